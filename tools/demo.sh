#!/usr/bin/env bash
# The README's main command: set up, build, generate the demo dataset if absent, and dissect the
# demo model with the embedded default configuration (pipeline.toml); `up` ends by writing the
# HTML report and printing where it is.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${ND_BUILD_DIR:-$repo/build}"
# Only what the demo runs: the test suites are built by tools/test.sh.
ND_BUILD_TARGETS="nd-pipeline nd-stage-decode nd-stage-extract nd-stage-extract-relay nd-stage-decode-relay nd-stage-calibrate nd-stage-score \
nd-stage-score-tensor nd-make-broden nd-report" "$repo/tools/setup.sh"
bin="$build/bin"
dataset="$repo/demo/broden"
if [ ! -f "$dataset/index.csv" ]; then
  "$bin/nd-make-broden" --out "$dataset" --images 2000 --seed 1 --size 224
fi
exec "$bin/nd-pipeline" up -c "$repo/pipeline.toml" "$@"
