# Shared by the Slurm tests (sourced): fail, bounded polling, and job fields from scontrol.

fail() {
  echo "FAIL: $*"
  exit 1
}

# wait_until SECONDS WHAT COMMAND...: polls every 0.2 s; fails the test when time is up.
wait_until() {
  local seconds="$1" what="$2" deadline
  shift 2
  deadline=$((SECONDS + seconds))
  until "$@"; do
    ((SECONDS < deadline)) || fail "timed out after ${seconds}s waiting for $what"
    sleep 0.2
  done
}

# field JOBID KEY: one field of `scontrol show job` (the first, for an array's tasks).
field() { scontrol -o show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
