#!/usr/bin/env bash
# The README's main command: set up, build, generate the demo dataset if absent, and run the
# embedded default configuration (pipeline.toml).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${ND_BUILD_DIR:-$repo/build}"
"$repo/tools/setup.sh"
bin="$build/bin"
dataset="$repo/demo/broden"
if [ ! -f "$dataset/index.csv" ]; then
  "$bin/nd-make-broden" --out "$dataset" --images 2000 --seed 1 --size 224
fi
"$bin/nd-pipeline" validate -c "$repo/pipeline.toml" >/dev/null
echo "demo dataset: $dataset ($(($(wc -l <"$dataset/index.csv") - 1)) images)"
