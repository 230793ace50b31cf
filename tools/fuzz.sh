#!/bin/bash
# Builds the libFuzzer targets (tests/fuzz: csv_fuzz, png_fuzz) with clang-14 in build-fuzz and runs
# each for N seconds (default 300) on a seed corpus of small valid CSV and PNG files that this
# script writes. Prints, per target, the executions, executions per second, the corpus size and any
# crash (reproducers land in build-fuzz/artifacts/; copy one to tests/fuzz/corpus/<csv|png>/ so that
# the normal build's ctest replays it).
#
#   tools/fuzz.sh [seconds] [csv] [png]     # default: both targets, one after the other
#   tools/fuzz.sh --seeds DIR               # only write the seed corpus into DIR/{csv,png}
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${ND_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}

write_seeds() {  # $1 = directory; writes $1/csv and $1/png
  mkdir -p "$1/csv" "$1/png"
  /usr/bin/python3 - "$1" <<'PY'
import struct, sys, zlib, os
out = sys.argv[1]
csvs = {
  "index.csv": "image,split,ih,iw,sh,sw,color,object,scene\n"
               "a/1.jpg,train,8,8,4,4,a/1_color.png,a/1_object.png;a/1_object_2.png,3;4\n"
               "a/2.jpg,val,8,8,4,4,,,\n",
  "index_crlf_bom.csv": "\ufeffimage,split,ih,iw,sh,sw,part\r\nx.jpg,train,6,6,3,3,\"p,1.png\"\r\n",
  "label.csv": "number,name,category,frequency,coverage,syns\n"
               "1,red-c,color(2),2,0.5,\n2,sky,object(1),1,1e-05,\"heaven;\"\"blue\"\"\"\n"
               "3,street-s,scene(1),1,1.000000,\n",
  "category.csv": "name,first,last,count,frequency\ncolor,1,1,1,2\nobject,2,2,1,1\n",
  "c_object.csv": "code,number,name,frequency,coverage\n1,2,sky,1,0.910724454131\n",
  "multiline.csv": "a,b\n\"line1\nline2\",-9223372036854775808\n\n\n1,2\n",
}
for name, text in csvs.items():
    with open(os.path.join(out, "csv", name), "w", encoding="utf-8", newline="") as f:
        f.write(text)

def chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

def png(w, h, depth, ctype, rows, filt=0, interlace=0, split=1, extra=b""):
    bpp = {(8, 2): 3, (8, 6): 4, (8, 0): 1, (16, 0): 2, (8, 3): 1}[(depth, ctype)]
    raw = b""
    prev = bytes(w * bpp)
    for r in rows:
        r = bytes(r)
        if filt == 1:
            f = bytes((r[i] - (r[i - bpp] if i >= bpp else 0)) & 255 for i in range(len(r)))
        elif filt == 2:
            f = bytes((r[i] - prev[i]) & 255 for i in range(len(r)))
        else:
            f = r
        raw += bytes([filt]) + f
        prev = r
    z = zlib.compress(raw, 9)
    parts = [z[i * len(z) // split:(i + 1) * len(z) // split] for i in range(split)]
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))
    data += extra
    for p in parts:
        data += chunk(b"IDAT", p)
    return data + chunk(b"IEND", b"")

w, h = 4, 3
rgb = [[(x * 40 + y) % 256 for x in range(w) for _ in range(3)] for y in range(h)]
seeds = {
  "rgb8.png": png(w, h, 8, 2, rgb),
  "rgb8_sub.png": png(w, h, 8, 2, rgb, filt=1),
  "rgb8_up_2idat.png": png(w, h, 8, 2, rgb, filt=2, split=2),
  "rgba8.png": png(w, h, 8, 6, [[(x + y) % 256 for x in range(w) for _ in range(4)] for y in range(h)]),
  "gray8.png": png(w, h, 8, 0, [[x * 7 + y for x in range(w)] for y in range(h)]),
  "gray16.png": png(w, h, 16, 0, [[(x * 300 >> (8 * (1 - b))) & 255 for x in range(w) for b in range(2)] for y in range(h)]),
  "palette.png": png(w, h, 8, 3, [[x % 2 for x in range(w)] for y in range(h)],
                     extra=chunk(b"PLTE", bytes([255, 0, 0, 0, 1, 0]))),
  "rgb8_8x8.png": png(8, 8, 8, 2, [[(x * y) % 256 for x in range(8) for _ in range(3)] for y in range(8)]),
}
for name, data in seeds.items():
    with open(os.path.join(out, "png", name), "wb") as f:
        f.write(data)
PY
}

if [[ "${1:-}" == "--seeds" ]]; then
  write_seeds "$2"
  exit 0
fi

SECONDS_EACH=${1:-300}
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -eq 0 ]] && TARGETS=(csv png)

if ! command -v clang++-14 >/dev/null ||
   ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "fuzz.sh: needs clang-14 with libFuzzer (Debian 12: apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 2
fi
if [[ ! -f "$BUILD/build.ninja" ]]; then
  cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DND_FUZZ=ON \
    -DND_BUILD_TESTS=OFF -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_C_COMPILER=clang-14 >/dev/null
fi
cmake --build "$BUILD" --target $(printf '%s_fuzz ' "${TARGETS[@]}") -j2

write_seeds "$BUILD/seeds"
status=0
for t in "${TARGETS[@]}"; do
  corpus="$BUILD/corpus/$t"
  artifacts="$BUILD/artifacts/$t/"
  mkdir -p "$corpus" "$artifacts"
  log="$BUILD/fuzz-$t.log"
  echo "== ${t}_fuzz: $SECONDS_EACH s, seeds $BUILD/seeds/$t + $ROOT/tests/fuzz/corpus/$t, log $log"
  set +e
  extra=()
  [[ -d "$ROOT/tests/fuzz/corpus/$t" ]] && extra=("$ROOT/tests/fuzz/corpus/$t")
  "$BUILD/fuzz/${t}_fuzz" "$corpus" "$BUILD/seeds/$t" "${extra[@]}" \
    -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix="$artifacts" \
    -rss_limit_mb=2048 -max_len=65536 -timeout=10 >"$log" 2>&1
  rc=$?
  set -e
  runs=$( (grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" || true) | awk '{print $2}' | tail -1)
  rate=$( (grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" || true) | awk '{print $2}' | tail -1)
  crashes=$(ls "$artifacts" | wc -l)
  echo "${t}_fuzz: exit $rc, ${runs:-?} executions, ${rate:-?} exec/s, corpus $(ls "$corpus" | wc -l) files, $crashes crash/leak/timeout artifacts"
  if [[ $rc -ne 0 || $crashes -ne 0 ]]; then
    status=1
    grep -m3 -E 'ERROR: |SUMMARY: |deadly signal' "$log" || true
    ls "$artifacts"
  fi
done
exit $status
