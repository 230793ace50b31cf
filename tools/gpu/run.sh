#!/usr/bin/env bash
# Builds nd-pipeline on the GPU machine and benchmarks it at Broden scale; prints one table.
# Runs from the repository root, offline, with the folder from tools/gpu/prepare_deps.sh carried
# along (see tools/gpu/README.md):
#
#   tools/gpu/run.sh                  on the GPU machine: 63,305 images at 224 (segmentation 112)
#   ND_GPU_DRYRUN=1 tools/gpu/run.sh  anywhere: device cpu, 64 images at 112, to check the script
#
# Steps, each timed: configure + build (Release, no tests, only the executables the benchmark runs),
# export ResNet-18 and ResNet-50 (random weights, plain torch.nn, tools/gpu/export_models.py),
# nd-make-broden, then for each model (layer4) and precision (fp32, fp16): nd-bench cold run (fresh
# cache, end to end through `nd-pipeline up`) and a rescore at a new quantile (`nd-pipeline up` on
# the cold run's cache: phase 2 only). The whole script keeps to a budget (480 s on the GPU machine):
# each step gets a timeout from what is left, and runs that no longer fit are reported as skipped.
#
# Environment (all optional):
#   OUT              where bench-table.txt, results.tsv and logs/ go (default gpu-out/)
#   ND_DEPS_DIR      the prepared folder (default gpu-deps/)
#   ND_GPU_BUILD     build folder (default build-gpu)
#   ND_GPU_WORK      dataset, models and bench caches (default gpu-work/; needs ~20 GB at full size)
#   ND_GPU_IMAGES    dataset size (default 63305; dry run 64)
#   ND_GPU_MODELS    default "resnet18 resnet50";  ND_GPU_PRECISIONS  default "fp32 fp16"
#   ND_GPU_BATCH     model.batch_size (default 256; dry run 16)
#   ND_GPU_DEVICE    model.device as a TOML value (default "cuda"; e.g. '["cuda:0", "cuda:0"]' for two
#                    extract workers on one GPU; dry run "cpu")
#   ND_GPU_SCORE_DEVICE  score.device (default cpu)
#   ND_GPU_BUDGET_S  whole-script budget in seconds (default 480; dry run 1800)
#   ND_GPU_JOBS      build and generator threads (default: all cores)
#   ND_PYTHON        a python3 with torch (default: the first of python3, /usr/bin/python3 that has it)
#   ND_GPU_CMAKE_ARGS  extra cmake arguments
#   ND_GPU_SKIP_BUILD=1  use the executables already in ND_GPU_BUILD/bin (no configure, no build)
set -uo pipefail

t_start=$(date +%s)
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
dry="${ND_GPU_DRYRUN:-0}"
[[ "$dry" == 0 ]] && dry=""
out="${OUT:-$repo/gpu-out}"
deps="${ND_DEPS_DIR:-$repo/gpu-deps}"
build="${ND_GPU_BUILD:-build-gpu}"
work="${ND_GPU_WORK:-$repo/gpu-work}"
jobs="${ND_GPU_JOBS:-$(nproc)}"
models="${ND_GPU_MODELS:-resnet18 resnet50}"
precisions="${ND_GPU_PRECISIONS:-fp32 fp16}"
score_device="${ND_GPU_SCORE_DEVICE:-cpu}"
if [[ -n "$dry" ]]; then
  images="${ND_GPU_IMAGES:-64}"; size=112; batch="${ND_GPU_BATCH:-16}"; device='"cpu"'
  budget="${ND_GPU_BUDGET_S:-1800}"; map_mb=1024
else
  images="${ND_GPU_IMAGES:-63305}"; size=224; batch="${ND_GPU_BATCH:-256}"; device='"cuda"'
  budget="${ND_GPU_BUDGET_S:-480}"; map_mb=32768
fi
device="${ND_GPU_DEVICE:-$device}"
mkdir -p "$out/logs" "$work"
out="$(cd "$out" && pwd)"; work="$(cd "$work" && pwd)"
logs="$out/logs"
bin="$repo/$build/bin"
[[ "$build" == /* ]] && bin="$build/bin"
steps_tsv="$out/steps.tsv"; results_tsv="$out/results.tsv"
printf 'step\tseconds\tstatus\n' > "$steps_tsv"

say() { printf '[run.sh %4ds] %s\n' "$(( $(date +%s) - t_start ))" "$*" | tee -a "$logs/run.log"; }
left() { echo $(( budget - ($(date +%s) - t_start) )); }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b-a}'; }

# step NAME LIMIT_S CMD...: runs CMD with its output in logs/NAME.log, bounded by min(LIMIT_S, what
# is left of the budget); LIMIT_S 0 = no timeout (the build: timeout breaks ninja's jobserver).
step() {
  local name="$1" limit="$2"; shift 2
  local rest; rest=$(left)
  if (( limit > 0 && limit > rest )); then limit=$rest; fi
  if (( limit != 0 && limit < 5 )); then
    say "$name: skipped, budget spent"; printf '%s\t-\tskipped\n' "$name" >> "$steps_tsv"; return 124
  fi
  say "$name: $* (limit ${limit}s)"
  local t0 t1 rc
  t0=$(now)
  if (( limit > 0 )); then
    timeout --kill-after=10 "$limit" "$@" > "$logs/$name.log" 2>&1; rc=$?
  else
    "$@" > "$logs/$name.log" 2>&1; rc=$?
  fi
  t1=$(now)
  local status=ok
  (( rc == 124 || rc == 137 )) && status=timeout
  (( rc != 0 && rc != 124 && rc != 137 )) && status="exit $rc"
  printf '%s\t%s\t%s\n' "$name" "$(secs "$t0" "$t1")" "$status" >> "$steps_tsv"
  say "$name: $status in $(secs "$t0" "$t1") s"
  if (( rc != 0 )); then tail -n 15 "$logs/$name.log" | sed 's/^/    /' | tee -a "$logs/run.log"; fi
  return $rc
}

# --- machine ------------------------------------------------------------------------------------
python=""
torch_prefix=""
for p in ${ND_PYTHON:-} python3 /usr/bin/python3; do
  if torch_prefix="$("$p" -c 'import torch;print(torch.utils.cmake_prefix_path)' 2> /dev/null)"; then
    python="$p"; break
  fi
done
[[ -n "$python" ]] || { say "no python3 with torch found (set ND_PYTHON)"; exit 1; }
mode="GPU"; [[ -n "$dry" ]] && mode="dry run (cpu)"
say "mode: $mode; $images images at $size; models: $models; precisions: $precisions"
say "machine: $(nproc) cores, $(free -g 2>/dev/null | awk '/Mem:/{print $2" GiB"}'), $(uname -r)"
torch_info="$("$python" -c 'import torch;print("torch", torch.__version__, "| cuda", torch.version.cuda, "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU visible to torch")' 2>&1 | tail -n 1)"
say "$torch_info"
command -v nvidia-smi > /dev/null && nvidia-smi -L 2>&1 | tee -a "$logs/run.log"
[[ -f "$deps/lib/pkgconfig/libzmq.pc" ]] || { say "$deps: not a prepared deps folder (tools/gpu/prepare_deps.sh)"; exit 1; }

# --- build ----------------------------------------------------------------------------------------
# LibTorch's CMake config looks for the CUDA toolkit; help it when nvcc is not on PATH.
if ! command -v nvcc > /dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
if [[ "${ND_GPU_SKIP_BUILD:-0}" != 1 ]]; then
  gen=(); command -v ninja > /dev/null && gen=(-G Ninja)
  [[ -f "$build/CMakeCache.txt" ]] && gen=()   # keep the generator of an existing build folder
  # shellcheck disable=SC2086
  step configure 180 cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DND_BUILD_TESTS=OFF \
    -DND_DEPS_DIR="$deps" -DCMAKE_PREFIX_PATH="$torch_prefix" ${ND_GPU_CMAKE_ARGS:-} || exit 1
  step build 0 cmake --build "$build" -j "$jobs" --target nd-pipeline nd-stage-decode nd-stage-extract \
    nd-stage-extract-relay nd-stage-decode-relay \
    nd-stage-calibrate nd-stage-score nd-stage-score-tensor nd-make-broden nd-bench || exit 1
  if command -v ldd > /dev/null; then
    say "nd-stage-decode links: $(ldd "$bin/nd-stage-decode" | awk '{print $1}' | grep -E 'zmq|lmdb|opencv|deflate|jpeg|png' | tr '\n' ' ')(none of zmq/lmdb/opencv/deflate/jpeg/png expected: static)"
  fi
else
  say "build: skipped (ND_GPU_SKIP_BUILD=1), using $bin"
fi

# --- models ---------------------------------------------------------------------------------------
limit_export=120; [[ -n "$dry" ]] && limit_export=600
missing=""   # models already exported into ND_GPU_WORK by an earlier run are kept
for m in $models; do [[ -s "$work/models-$size/$m.pt" ]] || missing="$missing${missing:+,}$m"; done
if [[ -n "$missing" ]]; then
  step export "$limit_export" "$python" tools/gpu/export_models.py "$work/models-$size" --size "$size" \
    --archs "$missing" || exit 1
else
  say "export: $models already in $work/models-$size, kept"
fi

# --- dataset --------------------------------------------------------------------------------------
data="$work/broden-$images-$size"
if [[ -f "$data/index.csv" && -f "$data/.complete" ]]; then
  say "dataset: $data exists, reused"
else
  step generate 240 "$bin/nd-make-broden" --out "$data" --images "$images" --size "$size" \
    --threads "$jobs" --seed 1 --overwrite || exit 1
  touch "$data/.complete"
fi
say "dataset: $(du -sh "$data" | cut -f1), $(( $(wc -l < "$data/index.csv") - 1 )) images"

# --- benchmarks -------------------------------------------------------------------------------------
printf 'model\tprecision\timages\tcold_s\tcold_images_per_s\tforward_s\tforward_images_per_s\tdecode_images_per_s\tscore_images_per_s\trescore_s\trescore_forward_images\tpeak_rss_mb\tpeak_rss_stage\tstatus\n' > "$results_tsv"

# Reads nd-bench's table (label, then the number in the last column) and the rescore summary.
parse() {  # parse MODEL PRECISION BENCH_LOG RESCORE_S RESCORE_SUMMARY STATUS
  "$python" - "$@" >> "$results_tsv" <<'PY'
import json, re, sys
model, prec, log, rescore_s, summary, status = sys.argv[1:7]
vals, rss = {}, {}
images = None
try:
    lines = open(log, errors="replace").read().splitlines()
except OSError:
    lines = []
for line in lines:
    m = re.match(r"nd-bench: .*?, (\d+) images,", line)
    if m:
        images = int(m.group(1))
    m = re.match(r"^(\S.*?)\s{2,}(-?[0-9.]+(?:e[-+]?\d+)?)\s*$", line.rstrip())
    if m:
        vals[m.group(1).strip()] = float(m.group(2))
        r = re.match(r"peak RSS (\S+), MB", m.group(1))
        if r:  # full stage names; older nd-bench builds cut them at 15 characters ("calibr")
            name = {"calibr": "calibrate", "extrac": "extract"}.get(r.group(1), r.group(1))
            rss[name] = float(m.group(2))
def get(k):
    return vals.get(k)
cold = get("end-to-end nd-pipeline up, s")
fwd = get("forward inside extract, s")
rf = ""
try:
    rf = str(json.load(open(summary)).get("forward_images", ""))
except Exception:
    pass
peak_stage = max(rss, key=rss.get) if rss else ""
def f(x, fmt="%.2f"):
    return "" if x is None or x == "" else fmt % float(x)
row = [model, prec, str(images or ""), f(cold),
       f(images / cold if images and cold else None, "%.0f"), f(fwd),
       f(images / fwd if images and fwd else None, "%.0f"),
       f(get("decode images/s (stage wall)"), "%.0f"), f(get("score images/s (stage wall)"), "%.0f"),
       f(rescore_s if rescore_s else None), rf,
       f(rss.get(peak_stage), "%.0f") if rss else "", peak_stage, status]
print("\t".join(x if x else "-" for x in row))
PY
}

for model in $models; do
  limit_cold=150; [[ "$model" == resnet18 ]] && limit_cold=100
  [[ -n "$dry" ]] && limit_cold=600
  for prec in $precisions; do
    tag="$model-$prec"
    w="$work/bench-$tag"
    cfg="$work/bench-$tag.toml"
    cat > "$cfg" <<TOML
# written by tools/gpu/run.sh
[dataset]
path = "$data"

[model]
path = "$work/models-$size/$model.pt"
layers = ["layer4"]
input_size = $size
preprocess = "torchvision"
device = $device
batch_size = $batch
precision = "$prec"

[threshold]
quantile = 0.005

[score]
device = "$score_device"

[cache]
dir = "$w/cache"
dtype = "float16"
map_size_mb = $map_mb

[output]
dir = "$w/out"
TOML
    status=ok rescore_s=""
    # --settle-ms 0: nd-bench's pause before a timed run is for VMs that hand freed memory back to
    # their host (tools/bench/nd_bench.cc); here it would only spend the budget.
    if step "cold-$tag" "$limit_cold" "$bin/nd-bench" -c "$cfg" --work "$w" --skip-bare --settle-ms 0; then
      if step "rescore-$tag" 60 "$bin/nd-pipeline" up --no-report -c "$cfg" \
           --set "cache.dir=$w/cache" --set "output.dir=$w/out" --set threshold.quantile=0.01; then
        rescore_s=$(awk -F'\t' -v n="rescore-$tag" '$1==n{print $2}' "$steps_tsv")
      else
        status="rescore failed"
      fi
    else
      status="cold failed"
    fi
    parse "$model" "$prec" "$logs/cold-$tag.log" "$rescore_s" "$w/out/layer4/summary.json" "$status"
    [[ -n "$dry" ]] || rm -rf "$w"   # the next run's cache needs the disk
  done
done

# --- table ----------------------------------------------------------------------------------------
{
  echo
  echo "nd-pipeline on $(hostname): ${dry:+DRY RUN on cpu, }$images images at ${size}px, layer4, model.device $device, batch $batch, score.device $score_device"
  echo "$torch_info"
  echo
  column -t -s $'\t' "$results_tsv" 2>/dev/null || cat "$results_tsv"
  echo
  echo "cold: nd-bench --skip-bare (fresh cache, nd-pipeline up end to end, dataset in the page cache);"
  echo "rescore: nd-pipeline up at quantile 0.01 on the cold run's cache (rescore_forward_images must be 0);"
  echo "forward: time inside extract's forward calls (summary.json stage_seconds.forward)."
  echo
  echo "step timings (s):"
  column -t -s $'\t' "$steps_tsv" 2>/dev/null || cat "$steps_tsv"
  echo "total: $(( $(date +%s) - t_start )) s (budget $budget s)"
} | tee "$out/bench-table.txt"
