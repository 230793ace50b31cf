#!/usr/bin/env bash
# Prepares gpu-deps/: static ZeroMQ, LMDB, OpenCV (core, imgproc, imgcodecs), libdeflate, libpng and
# the toml++/cppzmq headers, for building nd-pipeline on the GPU machine, which has no network and none of
# these libraries. Runs on a Debian 12 (bookworm) CPU machine with network access to the Debian mirror;
# everything comes from Debian packages or Debian source packages. See tools/gpu/README.md.
#
#   tools/gpu/prepare_deps.sh [DEST]        DEST defaults to <repo>/gpu-deps (gitignored)
#
# Environment: ND_GPU_WORK (scratch folder for sources and builds, default /tmp/nd-gpu-deps-work),
#              ND_GPU_JOBS (parallel compile jobs, default 2), ND_GPU_STEPS (subset of
#              "opencv zmq lmdb toml deflate png", default all). Each step is skipped when its stamp file
#              exists in DEST/.stamps; delete DEST to start over.
#
# Layout of DEST:    include/ lib/*.a lib/cmake/opencv4/ lib/cmake/tomlplusplus/ lib/pkgconfig/*.pc
# The folder must stay under 64 MiB (what the GPU machine's run tool carries); the script fails if not.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dest="${1:-$repo/gpu-deps}"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
work="${ND_GPU_WORK:-/tmp/nd-gpu-deps-work}"
jobs="${ND_GPU_JOBS:-2}"
steps="${ND_GPU_STEPS:-opencv zmq lmdb toml deflate png}"
multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)"
syslib="/usr/lib/$multiarch"
mkdir -p "$work" "$dest/include" "$dest/lib/pkgconfig" "$dest/.stamps"

log() { printf '[prepare_deps %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { log "error: $*"; exit 1; }
stamp_done() { [[ -f "$dest/.stamps/$1" ]]; }
stamp() { date -u > "$dest/.stamps/$1"; }
want() { [[ " $steps " == *" $1 "* ]]; }

# Source packages need a deb-src line; add one for bookworm on the mirror the binary lines use.
ensure_deb_src() {
  if apt-get source --print-uris zeromq3 > /dev/null 2>&1; then return; fi
  [[ $(id -u) -eq 0 ]] || die "no deb-src line for bookworm and not root: add one (see tools/gpu/README.md)"
  local mirror
  mirror="$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
            head -n1 | tr -d ' ')"
  mirror="${mirror:-http://deb.debian.org/debian}"
  log "adding deb-src for bookworm ($mirror) in /etc/apt/sources.list.d/nd-gpu-deb-src.sources"
  cat > /etc/apt/sources.list.d/nd-gpu-deb-src.sources <<SRC
Types: deb-src
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -qq
}

# Binary packages are unpacked into $work/debs, never installed.
fetch_deb() {  # fetch_deb PACKAGE -> prints the unpacked root
  local pkg="$1" root="$work/debs/$1"
  if [[ ! -d "$root" ]]; then
    mkdir -p "$work/debs/dl" "$root"
    (cd "$work/debs/dl" && apt-get download -qq "$pkg" > /dev/null)
    dpkg -x "$(ls -t "$work/debs/dl/${pkg}"_*.deb | head -n1)" "$root"
  fi
  echo "$root"
}

fetch_source() {  # fetch_source SRCPKG DIR
  local pkg="$1" dir="$2"
  if [[ ! -d "$dir" ]]; then
    mkdir -p "$work/src"
    (cd "$work/src" && apt-get source --download-only -qq "$pkg" > /dev/null)
    dpkg-source -x "$(ls -t "$work/src/${pkg}"_*.dsc | head -n1)" "$dir" > /dev/null
  fi
}

# --- OpenCV: core, imgproc, imgcodecs, static, minimal -----------------------------------------
# Debian's +dfsg source has no 3rdparty/ folder, so BUILD_JPEG/BUILD_PNG/BUILD_ZLIB cannot bundle the
# codecs; OpenCV is linked instead against Debian's static libjpeg-turbo, libpng16 and zlib (PIE code,
# like everything Debian builds), which are copied into DEST/lib and referenced from the installed
# OpenCVModules.cmake relative to the install prefix.
build_opencv() {
  fetch_source opencv "$work/opencv-src"
  local jpeg png zlib
  jpeg="$(fetch_deb libjpeg62-turbo-dev)"; png="$(fetch_deb libpng-dev)"; zlib="$(fetch_deb zlib1g-dev)"
  cp "$jpeg/usr/lib/$multiarch/libjpeg.a" "$png/usr/lib/$multiarch/libpng16.a" \
     "$zlib/usr/lib/$multiarch/libz.a" "$dest/lib/"
  # Codec headers for OpenCV's own build only; the installed OpenCV headers do not include them.
  local cinc="$work/codec-include"
  rm -rf "$cinc"; mkdir -p "$cinc"
  cp -r "$jpeg/usr/include/." "$cinc/"; cp -r "$jpeg/usr/include/$multiarch/." "$cinc/"
  cp -r "$png/usr/include/libpng16/." "$cinc/"; cp -r "$zlib/usr/include/." "$cinc/"
  local off=() o
  for o in TIFF WEBP OPENEXR JASPER OPENJPEG GDAL GDCM IPP ITT OPENCL OPENCL_SVM OPENCLAMDFFT \
           OPENCLAMDBLAS VA VA_INTEL LAPACK EIGEN TBB OPENMP PROTOBUF FFMPEG GSTREAMER GTK GTK_2_X QT \
           OPENGL VTK V4L 1394 CUDA CUFFT CUBLAS NVCUVID HALIDE VULKAN OPENVX QUIRC ADE CAROTENE \
           IMGCODEC_HDR IMGCODEC_SUNRASTER IMGCODEC_PXM IMGCODEC_PFM AVIF SPNG LIBREALSENSE \
           OPENNI OPENNI2 PVAPI ARAVIS XIMEA XINE MFX GPHOTO2 CAP_IOS ONNX TIMVX; do
    off+=("-DWITH_$o=OFF")
  done
  for o in TESTS PERF_TESTS EXAMPLES opencv_apps JAVA opencv_java opencv_python2 opencv_python3 \
           DOCS PACKAGE ITT IPP_IW PROTOBUF JPEG PNG ZLIB TIFF WEBP OPENEXR JASPER OPENJPEG \
           opencv_world FAT_JAVA_LIB KOTLIN_EXTENSIONS; do
    off+=("-DBUILD_$o=OFF")
  done
  local b="$work/opencv-build"
  cmake -S "$work/opencv-src" -B "$b" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$dest" \
    -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
    -DBUILD_SHARED_LIBS=OFF -DENABLE_PIC=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DBUILD_LIST=core,imgproc,imgcodecs \
    -DWITH_JPEG=ON -DWITH_PNG=ON -DWITH_PTHREADS_PF=ON \
    -DJPEG_INCLUDE_DIR="$cinc" -DJPEG_LIBRARY="$dest/lib/libjpeg.a" \
    -DPNG_PNG_INCLUDE_DIR="$cinc" -DPNG_LIBRARY="$dest/lib/libpng16.a" \
    -DZLIB_INCLUDE_DIR="$cinc" -DZLIB_LIBRARY="$dest/lib/libz.a" \
    -DCPU_BASELINE=SSE3 -DCPU_DISPATCH=AVX2 \
    -DCV_TRACE=OFF -DENABLE_CCACHE=OFF -DOPENCV_GENERATE_PKGCONFIG=OFF -DOPENCV_ENABLE_NONFREE=OFF \
    -DINSTALL_C_EXAMPLES=OFF -DINSTALL_PYTHON_EXAMPLES=OFF -DINSTALL_TESTS=OFF \
    -DOPENCV_SKIP_PYTHON_LOADER=ON -DOPENCV_DOC_INSTALL_PATH= \
    "${off[@]}"
  cmake --build "$b" -j "$jobs"
  cmake --install "$b" --strip
  # Point the installed config at the copies in DEST instead of this machine's paths.
  local f
  for f in "$dest"/lib/cmake/opencv4/*.cmake; do
    sed -i -e "s#$dest/lib/#\${_IMPORT_PREFIX}/lib/#g" "$f"
  done
  if grep -rn "$work\|$syslib\|$dest" "$dest/lib/cmake/opencv4/" > /dev/null; then
    grep -rn "$work\|$syslib\|$dest" "$dest/lib/cmake/opencv4/" | head
    die "installed OpenCV cmake config still names build-machine paths"
  fi
  rm -rf "$dest/share" "$dest/bin"
}

# --- ZeroMQ: static libzmq without libsodium/CURVE, GSSAPI, PGM, NORM, libbsd; cppzmq headers ------
# Debian's own libzmq.a is built with libsodium, gssapi, pgm and norm, which the GPU machine lacks.
build_zmq() {
  fetch_source zeromq3 "$work/zeromq-src"
  local b="$work/zeromq-build"
  cmake -S "$work/zeromq-src" -B "$b" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$work/zeromq-install" \
    -DCMAKE_C_FLAGS_RELEASE="-O2 -DNDEBUG" -DCMAKE_CXX_FLAGS_RELEASE="-O2 -DNDEBUG" \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DBUILD_SHARED=OFF -DBUILD_STATIC=ON -DBUILD_TESTS=OFF -DWITH_PERF_TOOL=OFF -DWITH_DOCS=OFF \
    -DENABLE_CPACK=OFF -DENABLE_DRAFTS=OFF -DENABLE_WS=OFF -DWITH_TLS=OFF -DENABLE_CURVE=OFF \
    -DWITH_LIBSODIUM=OFF -DWITH_LIBBSD=OFF -DWITH_OPENPGM=OFF -DWITH_NORM=OFF -DWITH_VMCI=OFF \
    -DENABLE_RADIX_TREE=OFF -DENABLE_INTRINSICS=OFF
  cmake --build "$b" -j "$jobs"
  cmake --install "$b"
  cp "$work/zeromq-install/include/zmq.h" "$work/zeromq-install/include/zmq_utils.h" "$dest/include/"
  cp "$work/zeromq-install/lib/libzmq.a" "$dest/lib/"
  strip --strip-debug "$dest/lib/libzmq.a"
  local cpp
  cpp="$(fetch_deb cppzmq-dev)"
  cp "$cpp/usr/include/zmq.hpp" "$cpp/usr/include/zmq_addon.hpp" "$dest/include/"
  local version
  version="$(sed -n 's/^#define ZMQ_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)/\2/p' "$dest/include/zmq.h" | paste -sd.)"
  cat > "$dest/lib/pkgconfig/libzmq.pc" <<PC
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libzmq
Description: 0MQ c++ library, static, without CURVE/GSSAPI/PGM/NORM (nd-pipeline gpu-deps)
Version: $version
Libs: -L\${libdir} -lzmq
Cflags: -I\${includedir} -DZMQ_STATIC
PC
}

# (No -lpthread in the .pc files: glibc >= 2.34 has pthreads in libc, and the project links
# Threads::Threads; -lpthread would resolve to the empty libpthread.a stub.)

# --- LMDB: Debian's liblmdb.a and lmdb.h ---------------------------------------------------------
build_lmdb() {
  local r version
  r="$(fetch_deb liblmdb-dev)"
  cp "$r/usr/include/lmdb.h" "$dest/include/"
  cp "$r/usr/lib/$multiarch/liblmdb.a" "$dest/lib/"
  version="$(dpkg-deb -f "$(ls -t "$work/debs/dl/"liblmdb-dev_*.deb | head -n1)" Version | sed 's/-.*//')"
  cat > "$dest/lib/pkgconfig/lmdb.pc" <<PC
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: lmdb
Description: Lightning Memory-Mapped Database, static (nd-pipeline gpu-deps)
Version: $version
Libs: -L\${libdir} -llmdb
Cflags: -I\${includedir}
PC
}

# --- toml++: Debian's headers, used header-only (Debian's config links its shared library) --------
build_toml() {
  local r
  r="$(fetch_deb libtomlplusplus-dev)"
  rm -rf "$dest/include/toml++"
  cp -r "$r/usr/include/toml++" "$dest/include/"
  mkdir -p "$dest/lib/cmake/tomlplusplus"
  cat > "$dest/lib/cmake/tomlplusplus/tomlplusplusConfig.cmake" <<'CM'
# toml++ (Debian's libtomlplusplus-dev headers), header-only: no library to link.
get_filename_component(_nd_toml_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET tomlplusplus::tomlplusplus)
  add_library(tomlplusplus::tomlplusplus INTERFACE IMPORTED)
  set_target_properties(tomlplusplus::tomlplusplus PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_nd_toml_prefix}/include"
    INTERFACE_COMPILE_DEFINITIONS "TOML_HEADER_ONLY=1"
    INTERFACE_COMPILE_FEATURES "cxx_std_17")
endif()
set(tomlplusplus_FOUND TRUE)
unset(_nd_toml_prefix)
CM
  local version
  version="$(dpkg-deb -f "$(ls -t "$work/debs/dl/"libtomlplusplus-dev_*.deb | head -n1)" Version | sed 's/+.*//')"
  cat > "$dest/lib/cmake/tomlplusplus/tomlplusplusConfigVersion.cmake" <<CM
set(PACKAGE_VERSION "$version")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
CM
}

# --- libdeflate: Debian's static library ----------------------------------------------------------
build_deflate() {
  local r
  r="$(fetch_deb libdeflate-dev)"
  cp "$r/usr/include/libdeflate.h" "$dest/include/"
  cp "$r/usr/lib/$multiarch/libdeflate.a" "$dest/lib/"
}

# --- libpng: Debian's static library and headers, for common/broden's label PNG fallback ----------
# (OpenCV's step copies libpng16.a and libz.a for imgcodecs; the headers are needed by the project
# itself since nd_broden reads PNGs through libpng without OpenCV.) A folder made before this step
# existed gets it on the next run of this script: the other steps are stamped.
build_png() {
  local png zlib
  png="$(fetch_deb libpng-dev)"; zlib="$(fetch_deb zlib1g-dev)"
  cp "$png/usr/include/libpng16/png.h" "$png/usr/include/libpng16/pngconf.h" \
     "$png/usr/include/libpng16/pnglibconf.h" "$dest/include/"
  cp "$png/usr/lib/$multiarch/libpng16.a" "$zlib/usr/lib/$multiarch/libz.a" "$dest/lib/"
}

# --- main ------------------------------------------------------------------------------------------
ensure_deb_src
for s in $steps; do
  if stamp_done "$s"; then log "$s: already in $dest (stamp), skipped"; continue; fi
  log "$s: start"
  t0=$(date +%s)
  "build_$s"
  stamp "$s"
  log "$s: done in $(( $(date +%s) - t0 )) s"
done
size_kib=$(du -sk "$dest" | cut -f1)
log "$dest: $(( size_kib / 1024 )) MiB ($size_kib KiB)"
(( size_kib <= 64 * 1024 )) || die "$dest is larger than 64 MiB"
