# Shared by the Slurm tests (sourced): the skip rule, fail, bounded polling, and job fields from
# scontrol.

# require_cluster_tools [MORE_TOOLS...]: exits 77 (ctest: skipped) without Slurm's and munge's
# tools, ss, or root (slurmd must run as root).
require_cluster_tools() {
  local tool
  for tool in munged mungekey slurmctld slurmd sbatch squeue scontrol scancel sinfo ss "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "SKIP: '$tool' not found (apt-get install slurm-wlm munge iproute2)"
      exit 77
    fi
  done
  if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: slurmd must run as root"
    exit 77
  fi
}

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
