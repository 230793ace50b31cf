#!/usr/bin/env bash
# The README's test command: set up, build, and run every test with ctest.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${ND_BUILD_DIR:-$repo/build}"
"$repo/tools/setup.sh"
cd "$build"
ctest --output-on-failure -j "$(nproc)" "$@"
