#!/usr/bin/env bash
# ctest slurm_local_cluster: starts tools/slurm/local_cluster.sh in a temporary folder and checks
# what the sharded run (issue 15) will rely on: a 2-task job array and an afterok dependent that
# reads both outputs; an afterok dependent of a failed job is cancelled, never run; scontrol
# requeue reruns a running job with SLURM_RESTART_COUNT=1; scancel cancels without requeue; the
# daemons listen on 127.0.0.1 only; stop leaves no process and no listening port behind.
# Exit 77 (skipped) where slurm-wlm or munge is not installed or the user is not root.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cluster="$repo/tools/slurm/local_cluster.sh"

source "$(dirname "${BASH_SOURCE[0]}")/testing.sh"
require_cluster_tools

dir="$(mktemp -d /tmp/nd-slurm-test.XXXXXX)"
ok=0
finish() {
  "$cluster" stop "$dir" || true
  if ((ok)); then rm -rf "$dir"; else
    echo "--- logs kept in $dir; last lines:"
    tail -n 20 "$dir/slurmctld/slurmctld.log" "$dir/slurmd/slurmd.log" 2>/dev/null || true
  fi
}
trap finish EXIT

state_is() { [ "$(field "$1" JobState)" = "$2" ]; }
queue_empty() { [ -z "$(squeue -h -j "$1" -o %i 2>/dev/null)" ]; }

t0=$SECONDS
ND_SLURM_OWNER_PID=$$ "$cluster" start "$dir"
eval "$("$cluster" env "$dir")"
echo "started in $((SECONDS - t0)) s"
"$cluster" status "$dir" >/dev/null || fail "status after start"

# Every listening socket of the daemons is on 127.0.0.1.
pids="$(cat "$dir/slurmctld/slurmctld.pid" "$dir/slurmd/slurmd.pid" | paste -sd'|')"
listening="$(ss -Hltnp | grep -E "pid=($pids)," || true)"
[ "$(grep -c . <<<"$listening")" -ge 2 ] ||
  fail "expected slurmctld and slurmd to listen: $listening"
if awk '{print $4}' <<<"$listening" | grep -v '^127\.0\.0\.1:'; then
  fail "a daemon listens beyond 127.0.0.1: $listening"
fi

cd "$dir"
mkdir out

# A 2-task array and a dependent that reads both outputs.
cat >array_task.sh <<'EOF'
#!/bin/bash
echo "task $SLURM_ARRAY_TASK_ID of $SLURM_ARRAY_TASK_COUNT" >"out/task_$SLURM_ARRAY_TASK_ID.txt"
EOF
array="$(sbatch --parsable -J nd-array -o out/array_%a.log --array=0-1 array_task.sh)"
merge="$(sbatch --parsable -J nd-merge -o out/merge.log -d "afterok:$array" \
  --wrap 'cat out/task_0.txt out/task_1.txt >out/merged.txt')"
wait_until 60 "array $array and merge $merge" queue_empty "$array,$merge"
for job in "${array}_0" "${array}_1" "$merge"; do
  state_is "$job" COMPLETED || fail "job $job: $(field "$job" JobState), want COMPLETED"
done
[ "$(cat out/merged.txt)" = $'task 0 of 2\ntask 1 of 2' ] ||
  fail "merged.txt: $(cat out/merged.txt)"
echo "array + afterok: ok ($((SECONDS - t0)) s)"

# An afterok dependent of a failed job is cancelled (DependencyParameters=kill_invalid_depend).
failed="$(sbatch --parsable -o /dev/null --wrap 'exit 3')"
orphan="$(sbatch --parsable -o /dev/null -d "afterok:$failed" --wrap 'touch out/orphan_ran')"
wait_until 30 "dependent $orphan of failed $failed to be cancelled" state_is "$orphan" CANCELLED
state_is "$failed" FAILED || fail "job $failed: $(field "$failed" JobState), want FAILED"
[ "$(field "$orphan" Reason)" = DependencyNeverSatisfied ] ||
  fail "job $orphan: reason $(field "$orphan" Reason)"
[ ! -e out/orphan_ran ] || fail "the dependent of a failed job ran"
echo "afterok on a failed job: cancelled ($((SECONDS - t0)) s)"

# scontrol requeue of a running job: it runs again with SLURM_RESTART_COUNT=1, and completes.
cat >requeue_job.sh <<'EOF'
#!/bin/bash
echo "run ${SLURM_RESTART_COUNT:-0}" >>out/requeue_runs.txt
[ "${SLURM_RESTART_COUNT:-0}" -ge 1 ] || sleep 120
EOF
requeued="$(sbatch --parsable -o out/requeue.log --open-mode=append requeue_job.sh)"
wait_until 30 "job $requeued to start" test -s out/requeue_runs.txt
scontrol requeue "$requeued"
wait_until 60 "requeued job $requeued to complete" state_is "$requeued" COMPLETED
[ "$(cat out/requeue_runs.txt)" = $'run 0\nrun 1' ] || fail "runs: $(cat out/requeue_runs.txt)"
[ "$(field "$requeued" Restarts)" = 1 ] || fail "Restarts=$(field "$requeued" Restarts)"
echo "scontrol requeue: reran with SLURM_RESTART_COUNT=1 ($((SECONDS - t0)) s)"

# scancel of a running job cancels it; it is not requeued.
cancelled="$(sbatch --parsable -o /dev/null --wrap 'touch out/cancel_started; sleep 120')"
wait_until 30 "job $cancelled to start" test -e out/cancel_started
scancel "$cancelled"
wait_until 30 "job $cancelled to be cancelled" state_is "$cancelled" CANCELLED
sleep 2
restarts="$(field "$cancelled" Restarts)"
state_is "$cancelled" CANCELLED && [ "$restarts" = 0 ] ||
  fail "job $cancelled after scancel: $(field "$cancelled" JobState), Restarts=$restarts"
echo "scancel: cancelled, not requeued ($((SECONDS - t0)) s)"

# stop ends every daemon and frees the ports; a second stop is a no-op.
cd /
all_pids="$(cat "$dir/munge/munged.pid" "$dir/slurmctld/slurmctld.pid" "$dir/slurmd/slurmd.pid")"
port="$(sed -n 's/^SlurmctldPort=//p' "$dir/slurm.conf")"
"$cluster" stop "$dir"
"$cluster" stop "$dir"
for pid in $all_pids; do
  [ ! -d "/proc/$pid" ] || fail "pid $pid still runs after stop"
done
[ -z "$(ss -Hltn "( sport = :$port or sport = :$((port + 1)) )")" ] || fail "ports still listen"
if "$cluster" status "$dir" >/dev/null; then fail "status says running after stop"; fi
echo "stop: clean ($((SECONDS - t0)) s)"
ok=1
echo "PASS"
