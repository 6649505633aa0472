#!/usr/bin/env bash
# Builds the CUDA engine's check programs here (no GPU needed) and packs what the GPU machine needs into
# .device-carry/cuda (gitignored): stripped binaries, the tiny trained model, the WikiText-2 test text.
# The CUDA runtime and cuBLASLt come from the GPU machine's own CUDA 13 install.
# Usage: scripts/gpu/pack_cuda_carry.sh [build-dir]   (then run scripts/gpu/check_cuda_engine.sh there)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-cuda}
carry=$root/.device-carry/cuda
shared=${GPTBENCH_SHARED_DIR:-$root/../shared}
if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGPTBENCH_WITH_ONNXRUNTIME=OFF \
    -DGPTBENCH_WITH_ONNX_EXPORT=OFF
fi
targets=(gptbench_cuda_check)
if grep -q "cuda_engine_test" "$build/build.ninja"; then targets+=(cuda_engine_test); fi
cmake --build "$build" --target "${targets[@]}" -j2
rm -rf "$carry"
mkdir -p "$carry/bin" "$carry/gpt2-tiny-wt2"
for t in "${targets[@]}"; do
  f=$(find "$build" -name "$t" -type f -perm -u+x | head -1)
  cp "$f" "$carry/bin/" && strip "$carry/bin/$t"
done
cp "$shared"/models/gpt2-tiny-wt2/{config.json,model.safetensors,vocab.json,merges.txt} "$carry/gpt2-tiny-wt2/"
cp "$shared"/data/wikitext-2-raw/wiki.test.raw "$carry/"
du -sh "$carry"
