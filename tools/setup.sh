#!/usr/bin/env bash
# Shared setup for the README's commands: install missing Debian packages, configure, build.
# Incremental: packages already present are not reinstalled; the build reuses build/.
# Usage: tools/setup.sh [extra packages...]   (env: ND_BUILD_DIR, default <repo>/build;
#        ND_BUILD_TARGETS, default all targets)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${ND_BUILD_DIR:-$repo/build}"

# slurm-wlm, munge and iproute2 (ss): the one-node cluster of tools/slurm (ctest
# slurm_local_cluster).
packages=(g++ cmake ninja-build pkg-config libtorch-dev libzmq3-dev cppzmq-dev liblmdb-dev
          libopencv-dev zlib1g-dev libpng-dev libboost-dev libtomlplusplus-dev libgtest-dev libdeflate-dev
          libeigen3-dev
          python3-torch python3-torchvision chromium chromium-driver python3-selenium clang-format
          slurm-wlm munge iproute2 "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi

if [ ! -f "$build/build.ninja" ]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
fi
# ND_BUILD_TARGETS (space-separated) limits the build to those targets (the demo does not wait for
# the test suites); default: everything.
targets=()
for t in ${ND_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "$(nproc)" "${targets[@]}" >&2
