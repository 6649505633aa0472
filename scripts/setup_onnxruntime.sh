#!/usr/bin/env bash
# Installs ONNX Runtime for the optional onnxruntime backend into third_party/onnxruntime (git-ignored):
#   lib/libonnxruntime.so.1  from the npm package onnxruntime-node (its linux-x64 binary),
#   include/*.h              the C/C++ API headers from Debian 13 (trixie)'s libonnxruntime-dev package.
# The .deb is fetched through a temporary apt sources list and only unpacked: no Debian 13 package is ever
# installed on this (Debian 12) machine. The C API is versioned, so the headers may be older than the library
# but never newer: the script checks that the library serves the headers' ORT_API_VERSION.
# Quick when already done: a stamp file records what was installed.
#
# Environment: ORT_NPM_VERSION (default 1.30.0, the version on the GPU machine), ORT_DEB_SUITE (default trixie),
#              GPTBENCH_ORT_PREFIX (default <repo>/third_party/onnxruntime), ORT_FORCE=1 to reinstall.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${GPTBENCH_ORT_PREFIX:-$here/third_party/onnxruntime}
npm_version=${ORT_NPM_VERSION:-1.30.0}
deb_suite=${ORT_DEB_SUITE:-trixie}
stamp="$prefix/INSTALLED"
wanted="onnxruntime-node $npm_version; libonnxruntime-dev from $deb_suite"

say() { echo "setup_onnxruntime: $*"; }

if [ "${ORT_FORCE:-0}" != 1 ] && [ -f "$stamp" ] && head -n1 "$stamp" | grep -qxF "$wanted" \
   && [ -f "$prefix/lib/libonnxruntime.so.1" ] && [ -f "$prefix/include/onnxruntime_cxx_api.h" ]; then
  say "already installed in $prefix"
  sed -n '2,$p' "$stamp"
  exit 0
fi

for tool in npm apt-get dpkg-deb tar c++; do
  command -v "$tool" >/dev/null || { say "error: '$tool' is needed"; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. The shared library from the npm package (the tarball only; nothing is installed into node_modules).
say "fetching onnxruntime-node@$npm_version from npm"
(cd "$work" && npm pack --silent "onnxruntime-node@$npm_version" >/dev/null)
tarball=$(ls "$work"/onnxruntime-node-*.tgz)
mkdir -p "$work/npm"
tar -xzf "$tarball" -C "$work/npm" --wildcards 'package/bin/napi-v*/linux/x64/libonnxruntime.so*'
lib=$(find "$work/npm" -path '*linux/x64/*' -name 'libonnxruntime.so.1*' -type f | sort | head -n1)
[ -n "$lib" ] || { say "error: no linux/x64 libonnxruntime.so.1 in $(basename "$tarball")"; exit 1; }

# 2. The headers from Debian 13's libonnxruntime-dev, through a temporary sources list and apt state.
say "fetching libonnxruntime-dev from Debian $deb_suite (download only)"
mkdir -p "$work/apt/sources.d" "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/deb"
: >"$work/apt/empty.list"
cat >"$work/apt/sources.d/$deb_suite.sources" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $deb_suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_opts=(
  -o "Dir::Etc::SourceList=$work/apt/empty.list"
  -o "Dir::Etc::SourceParts=$work/apt/sources.d"
  -o "Dir::State::Lists=$work/apt/lists"
  -o "Dir::State::status=/dev/null"
  -o "Dir::Cache=$work/apt/cache"
  -o "APT::Architectures=amd64"
  -o "APT::Sandbox::User=root"
)
apt-get "${apt_opts[@]}" -qq update
(cd "$work/deb" && apt-get "${apt_opts[@]}" -qq download libonnxruntime-dev)
deb=$(ls "$work"/deb/libonnxruntime-dev_*.deb)
dpkg-deb -x "$deb" "$work/deb/root"
headers="$work/deb/root/usr/include/onnxruntime"
[ -f "$headers/onnxruntime_cxx_api.h" ] || { say "error: $(basename "$deb") has no onnxruntime_cxx_api.h"; exit 1; }
deb_version=$(dpkg-deb -f "$deb" Version)

# 3. Check compatibility before anything is put in place: the library must serve the headers' API version.
header_api=$(sed -n 's/^#define ORT_API_VERSION \([0-9]*\).*/\1/p' "$headers/onnxruntime_c_api.h")
cat >"$work/check.cpp" <<'EOF'
#include <cstdio>
#include "onnxruntime_c_api.h"
int main() {
  const OrtApiBase* base = OrtGetApiBase();
  const OrtApi* api = base->GetApi(ORT_API_VERSION);
  std::printf("%s\n", base->GetVersionString());
  return api ? 0 : 2;
}
EOF
mkdir -p "$work/lib"
cp "$lib" "$work/lib/libonnxruntime.so.1"
ln -sf libonnxruntime.so.1 "$work/lib/libonnxruntime.so"
c++ -std=c++17 -I"$headers" "$work/check.cpp" -L"$work/lib" -lonnxruntime -Wl,-rpath,"$work/lib" -o "$work/check"
if ! lib_version=$("$work/check"); then
  say "error: the library (${lib_version:-unknown version}) does not serve ORT_API_VERSION $header_api of the headers"
  exit 1
fi

# 4. Put it in place.
rm -rf "$prefix"
mkdir -p "$prefix/lib" "$prefix/include"
cp -a "$work/lib/libonnxruntime.so.1" "$work/lib/libonnxruntime.so" "$prefix/lib/"
cp -a "$headers/." "$prefix/include/"
{
  echo "$wanted"
  echo "library: libonnxruntime.so.1 $lib_version (npm onnxruntime-node@$npm_version)"
  echo "headers: libonnxruntime-dev $deb_version (ORT_API_VERSION $header_api)"
} >"$stamp"
say "installed in $prefix"
sed -n '2,$p' "$stamp"
