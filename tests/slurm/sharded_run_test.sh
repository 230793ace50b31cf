#!/usr/bin/env bash
# ctest slurm_sharded_run: the sharded run (issue 15) end to end on the one-node cluster of
# tools/slurm/local_cluster.sh, through the real commands:
#  1. a 3-shard `nd-pipeline up --slurm --wait` of a generated dataset equals the single-machine
#     `nd-pipeline up` byte for byte (tally.csv, thresholds.csv of layer3 and layer4) and in
#     summary.json's counts; the shards together forwarded every image once;
#  2. `scancel --signal=TERM --batch` of shard 0's forward task after it committed a batch: Slurm
#     requeues it (RequeueExit=99), the rerun completes, the results are identical, and the rerun
#     forwarded only what was not committed (its forward record: images_from_cache > 0 and
#     forward_images + images_from_cache = the slice);
#  3. `nd-pipeline rescore --slurm --wait` submits no forward phase, forwards no image, and gives
#     the same files; `nd-pipeline status` shows every phase and shard.
# Usage: sharded_run_test.sh BUILD_BIN_DIR. Exit 77 (skipped) where slurm-wlm or munge is not
# installed or the user is not root. Every wait is bounded; the cluster is always stopped.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${1:?usage: sharded_run_test.sh BUILD_BIN_DIR}"
cluster="$repo/tools/slurm/local_cluster.sh"

source "$(dirname "${BASH_SOURCE[0]}")/testing.sh"
require_cluster_tools python3

dir="$(mktemp -d /tmp/nd-shard-test.XXXXXX)"
chmod 755 "$dir"  # munged needs every folder above its socket executable by all
ok=0
finish() {
  "$cluster" stop "$dir/cluster" >/dev/null 2>&1 || true
  if ((ok)); then rm -rf "$dir"; else
    echo "--- files kept in $dir; last lines of the job logs:"
    tail -n 15 "$dir"/*/slurm/logs/*.log 2>/dev/null || true
  fi
}
trap finish EXIT

mkdir -p "$dir/cluster"
ND_SLURM_OWNER_PID=$$ "$cluster" start "$dir/cluster" >/dev/null
eval "$("$cluster" env "$dir/cluster")"

# Large enough that a shard's forward pass lasts a few seconds (batches of 2), so that the
# SIGTERM of part 2 lands mid-run.
images=1500
t0=$SECONDS
"$bin/nd-make-broden" --out "$dir/broden" --images $images --seed 5 --size 160 >/dev/null
echo "dataset: $images images in $((SECONDS - t0)) s"
cat >"$dir/pipeline.toml" <<EOF
[dataset]
path = "$dir/broden"
[model]
path = "$repo/tools/demo_model/demo_resnet.pt"
layers = ["layer3", "layer4"]
input_size = 128
device = "cpu"
batch_size = 2
[cache]
dir = "$dir/local/cache"
[output]
dir = "$dir/local/results"
[slurm]
shards = 3
EOF
nd() { timeout 300 "$bin/nd-pipeline" "$@"; }
# sharded NAME ...: the sharded run's own cache and results folders.
sets() { echo "--set cache.dir=$dir/$1/cache --set output.dir=$dir/$1/results --set slurm.dir=$dir/$1/slurm"; }

same_results() {  # same_results NAME: byte-identical files and equal summary counts
  local layer f
  for layer in layer3 layer4; do
    for f in tally.csv thresholds.csv; do
      cmp "$dir/local/results/$layer/$f" "$dir/$1/results/$layer/$f" ||
        fail "$1: $layer/$f differs from the single-machine run"
    done
    python3 - "$dir/local/results/$layer/summary.json" "$dir/$1/results/$layer/summary.json" <<'EOF' ||
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
# Counts, not timings nor how many images this invocation forwarded.
skip = {"stage_seconds", "score_cpu_s", "score_cpu_ms_per_image", "forward_images",
        "images_from_cache"}
diff = [k for k in a if k not in skip and a.get(k) != b.get(k)]
if diff or set(a) != set(b):
    print("summary.json differs in", diff or set(a) ^ set(b))
    sys.exit(1)
EOF
      fail "$1: $layer/summary.json counts differ"
  done
}

# 1. Single machine, then 3 shards.
t0=$SECONDS
nd up -c "$dir/pipeline.toml" --no-report >"$dir/local.log" 2>&1 || {
  tail "$dir/local.log"
  fail "single-machine up"
}
local_s=$((SECONDS - t0))
t0=$SECONDS
nd up -c "$dir/pipeline.toml" --slurm --wait $(sets sharded) >"$dir/sharded.log" 2>&1 || {
  cat "$dir/sharded.log"
  fail "sharded up"
}
sharded_s=$((SECONDS - t0))
same_results sharded
# The merge job's HTML report, read from the three cache shards, shows the same top images as a
# report of the single-machine run (images.csv: unit, rank, row, image, max activation).
"$bin/nd-report" -c "$dir/pipeline.toml" >"$dir/local_report.log" 2>&1 ||
  fail "nd-report of the single-machine run"
for layer in layer3 layer4; do
  cmp "$dir/local/results/report/img/$layer/images.csv" \
    "$dir/sharded/results/report/img/$layer/images.csv" ||
    fail "sharded report: $layer's top images differ from the single-machine report's"
done
forwarded=0
for i in 0 1 2; do
  n="$(sed -n 's/^forward_images //p' "$dir/sharded/slurm/shard-$i/forward.txt")"
  forwarded=$((forwarded + n))
done
[ "$forwarded" = $images ] || fail "the shards forwarded $forwarded images, expected $images"
grep -q "\"forward_images\": $images," "$dir/sharded/results/layer4/summary.json" ||
  fail "summary.json's forward_images is not $images"
echo "1. 3 shards = 1 machine, byte for byte (single machine ${local_s} s, 3 shards ${sharded_s} s)"
"$bin/nd-pipeline" status -c "$dir/pipeline.toml" $(sets sharded) >"$dir/status.txt"
for phase in forward thresholds score merge; do
  grep -q "^$phase .*COMPLETED" "$dir/status.txt" || {
    cat "$dir/status.txt"
    fail "status shows no completed $phase"
  }
done
grep -q "^2 .*forwarded" "$dir/status.txt" || fail "status shows no shard 2 forward record"

# 2. SIGTERM to shard 0's forward task once it has committed a batch: requeued, redone from there.
nd up -c "$dir/pipeline.toml" --slurm $(sets requeue) >"$dir/requeue.log" 2>&1 || {
  cat "$dir/requeue.log"
  fail "sharded up (requeue)"
}
forward_job="$(sed -n 's/^forward //p' "$dir/requeue/slurm/jobs.txt")"
merge_job="$(sed -n 's/^merge //p' "$dir/requeue/slurm/jobs.txt")"
status_json="$dir/requeue/slurm/shard-0/run/status.json"
committed() {
  [ -s "$status_json" ] && python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["stages"]
sys.exit(0 if s.get("extract", {}).get("items_out", 0) >= 8 else 1)' "$status_json" 2>/dev/null
}
wait_until 120 "shard 0 to commit two batches" committed
scancel --signal=TERM --batch "${forward_job}_0"
echo "2. SIGTERM to task ${forward_job}_0 after $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stages"]["extract"]["items_out"])' "$status_json") images"
merge_done() {
  local s
  s="$(field "$merge_job" JobState)"
  case "$s" in
    COMPLETED) return 0 ;;
    FAILED | CANCELLED | TIMEOUT) fail "merge job $merge_job ended $s" ;;
  esac
  return 1
}
wait_until 240 "the requeued run's merge job" merge_done
task0="$(squeue --states=all -h -o '%i %A' | awk -v a="${forward_job}_0" '$1 == a {print $2}')"
restarts="$(field "${task0:-${forward_job}_0}" Restarts)"
[ "$restarts" = 1 ] || fail "shard 0's task was restarted ${restarts:-?} times, expected 1"
record="$dir/requeue/slurm/shard-0/forward.txt"
cat "$record"
read -r _ restart < <(grep '^restart ' "$record")
read -r _ slice < <(grep '^images ' "$record")
read -r _ fwd < <(grep '^forward_images ' "$record")
read -r _ cached < <(grep '^images_from_cache ' "$record")
[ "$restart" = 1 ] || fail "shard 0's forward record is from restart $restart, expected 1"
[ "$slice" = $((images / 3)) ] || fail "shard 0 handled $slice images, expected $((images / 3))"
((cached >= 2)) || fail "the rerun found $cached images committed, expected at least one batch"
((fwd + cached == slice)) || fail "rerun forwarded $fwd + found $cached != slice $slice"
grep -q "SIGTERM, stopping; exit 99" "$dir/requeue/slurm/logs/forward-0.log" ||
  fail "shard 0's log does not show the SIGTERM"
same_results requeue
echo "   requeued (Restarts=1), completed; the rerun forwarded $fwd and took $cached committed"
echo "   images from its cache shard; results identical"

# 3. A rescore on the cluster: thresholds, score and merge only; no image forwarded.
t0=$SECONDS
nd rescore -c "$dir/pipeline.toml" --slurm --wait $(sets sharded) >"$dir/rescore.log" 2>&1 || {
  cat "$dir/rescore.log"
  fail "sharded rescore"
}
if grep -q '^forward ' "$dir/sharded/slurm/jobs.txt"; then fail "rescore submitted a forward phase"; fi
for i in 0 1 2; do
  for layer in layer3 layer4; do
    grep -qx 'forward_images 0' "$dir/sharded/slurm/shard-$i/counts/$layer/counts.txt" ||
      fail "rescore shard $i forwarded images"
  done
done
grep -q '"forward_images": 0,' "$dir/sharded/results/layer4/summary.json" ||
  fail "rescore summary.json's forward_images is not 0"
same_results sharded
echo "3. rescore: no forward phase, 0 images forwarded, same results ($((SECONDS - t0)) s)"
ok=1
echo "PASS"
