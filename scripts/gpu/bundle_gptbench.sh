#!/usr/bin/env bash
# Packs the gptbench program built here (CUDA + ONNX Runtime + export) for the GPU machine, which has none of our
# Debian libraries: .device-carry/gptbench/bundle.tar.xz holds bin/gptbench, the shared libraries it needs that are
# not part of the CUDA install there, ONNX Runtime, and the few files of ../shared a study needs (tokenizer files,
# the WikiText-2 texts, gpt2-tiny-wt2). Compressed, because the device call carries at most 64 MiB.
# Usage: scripts/gpu/bundle_gptbench.sh [build-dir]; then scripts/gpu/run_study.sh runs there.
# WITH_ORT=0 leaves ONNX Runtime out (~12 MB of the ~48 compressed): gptbench loads it only for the onnxruntime
# backend, so such a bundle still calibrates int8 and runs the native backends. For check_cuda_engine.sh's int8
# steps, whose call carries the CUDA binaries beside the bundle: with ONNX Runtime in, binaries, bundle and the
# tracked tree (16 MB on disk since the nineteenth session's results) no longer fit the 64 MiB a call carries.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
shared=${GPTBENCH_SHARED_DIR:-$root/../shared}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cmake --build "$build" --target gptbench -j2
mkdir -p "$stage/bin" "$stage/lib" "$stage/shared/models" "$stage/shared/data/wikitext-2-raw" "$stage/shared/data/wikitext-2"
cp "$build/apps/gptbench" "$stage/bin/" && strip "$stage/bin/gptbench"
# Every library the program links except glibc's, the compiler runtime's and the CUDA libraries, which the GPU
# machine has in newer versions (an older libstdc++ first on the path would break its Python).
ldd "$build/apps/gptbench" | awk '/=>/ {print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libstdc++*|libgcc_s*|libz.so*|libcudart*|libcublas*|libcuda.so*) ;;
    *) cp -L "$lib" "$stage/lib/" ;;
  esac
done
[[ ${WITH_ORT:-1} == 0 ]] || cp -L "$root"/third_party/onnxruntime/lib/libonnxruntime.so.1 "$stage/lib/"
cp -r "$shared/models/gpt2-tiny-wt2" "$stage/shared/models/"
cp "$shared/data/wikitext-2-raw/wiki.test.raw" "$stage/shared/data/wikitext-2-raw/"
cp "$shared/data/wikitext-2/wiki.valid.tokens" "$stage/shared/data/wikitext-2/"
mkdir -p "$root/.device-carry/gptbench"
tar -C "$stage" -cJf "$root/.device-carry/gptbench/bundle.tar.xz" .
du -h "$root/.device-carry/gptbench/bundle.tar.xz"
