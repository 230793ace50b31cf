#!/usr/bin/env bash
# Fails (exit 1) when a tracked C++ file differs from what the checked-in .clang-format makes of it,
# naming each such file. Usage: tools/check_format.sh [--fix]   (ctest runs it as format_check)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
formatter="$(command -v clang-format-14 || command -v clang-format || true)"
if [ -z "$formatter" ]; then
  echo "check_format: clang-format not found (Debian package clang-format)" >&2
  exit 1
fi
mapfile -t files < <(git ls-files -co --exclude-standard -- '*.cc' '*.h')
if [ "${1:-}" = "--fix" ]; then
  "$formatter" -i "${files[@]}"
  exit 0
fi
bad=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue
  if ! "$formatter" --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "check_format: $f is not formatted (run tools/check_format.sh --fix)" >&2
    bad=1
  fi
done
exit $bad
