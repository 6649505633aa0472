#!/usr/bin/env bash
# Installs what gptbench needs on a fresh Debian 12 machine, then configures and builds.
# Quick when everything is already there: apt is only asked for packages that are missing,
# and the build is incremental.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${GPTBENCH_BUILD_DIR:-$here/build}

debian_packages=(
  build-essential cmake ninja-build pkg-config
  libcli11-dev libyaml-cpp-dev nlohmann-json3-dev libfmt-dev libspdlog-dev
  libpcre2-dev libopenblas-dev libdnnl-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev
  libonnx-dev libprotobuf-dev protobuf-compiler gnuplot-nox
)

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime (optional backend): the shared library from the npm package onnxruntime-node,
# the C/C++ headers from Debian 13's libonnxruntime-dev (unpacked only, never installed).
if [ "${GPTBENCH_SKIP_ORT:-0}" != 1 ]; then
  bash "$here/scripts/setup_onnxruntime.sh" || echo "setup: ONNX Runtime not available; the onnxruntime backend will be left out"
fi

build_type=${GPTBENCH_BUILD_TYPE:-Release}
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S "$here" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="$build_type" ${GPTBENCH_CMAKE_ARGS:-}
fi
cmake --build "$build_dir" -j "$(nproc)"
