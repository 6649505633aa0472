#!/usr/bin/env bash
# Builds the CUDA engine's check programs, its GPU unit tests and the kernel labs here (no GPU needed) and packs
# them for the GPU machine into .device-carry/cuda (gitignored): bins.tar.xz (stripped, compressed: a device
# call carries at most 64 MiB; with the Debian libraries they link) and, unless WITH_BUNDLE=1 says that the gptbench
# bundle (bundle_gptbench.sh) provides them, the tiny trained model and the WikiText-2 test text. The CUDA
# runtime and cuBLASLt come from the GPU machine's own CUDA 13 install.
# Usage: scripts/gpu/pack_cuda_carry.sh [build-dir]   (then run scripts/gpu/check_cuda_engine.sh there)
# WITH_BUNDLE=1: for a call that carries the gptbench bundle too (int8 needs its `gptbench calibrate`): the bundle's
# lib/ and data serve the binaries, so neither is packed here, and only the check program and the unit tests are
# (LABS="persistent_lab ..." adds labs) — with a bundle made with WITH_ORT=0 (~36 MB), binaries (~5 MB) and the
# tree (~16 MB on disk) then fit the 64 MiB (with ONNX Runtime in the bundle, ~48 MB, they no longer do).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build-cuda}
carry=$root/.device-carry/cuda
shared=${GPTBENCH_SHARED_DIR:-$root/../shared}
if [[ ! -f $build/build.ninja ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DGPTBENCH_WITH_ONNXRUNTIME=OFF \
    -DGPTBENCH_WITH_ONNX_EXPORT=OFF
fi
with_bundle=${WITH_BUNDLE:-0}
if [[ $with_bundle == 1 && ! -f $root/.device-carry/gptbench/bundle.tar.xz ]]; then
  echo "pack_cuda_carry.sh: WITH_BUNDLE=1 but no .device-carry/gptbench/bundle.tar.xz (run scripts/gpu/bundle_gptbench.sh first)" >&2
  exit 1
fi
if [[ $with_bundle == 1 ]] && tar -tJf "$root/.device-carry/gptbench/bundle.tar.xz" | grep -q 'libonnxruntime'; then
  echo "pack_cuda_carry.sh: WITH_BUNDLE=1 but .device-carry/gptbench/bundle.tar.xz holds ONNX Runtime: with it, binaries, bundle and tree exceed a call's 64 MiB (rebuild it with WITH_ORT=0 scripts/gpu/bundle_gptbench.sh)" >&2
  exit 1
fi
labs="attention_lab gemv_lab gemm_lab cublaslt_lab wgmma_lab wgmma_chain_lab persistent_lab gemm_large_lab lm_head_lab residual_layernorm_lab layernorm_folded_lab tma_fill_lab decode_persistent_lab gemm_pingpong_lab row_groups_lab"
# LABS="a_lab b_lab" packs only those (with the bundle: none unless named); a call that carries the tiny model and
# the libraries here has room for the tree, ~18 MB of data and ~30 MB of binaries, not for every lab beside the rest.
if [[ $with_bundle == 1 ]]; then labs=${LABS:-}; else labs=${LABS:-$labs}; fi
targets=(gptbench_cuda_check)
known=$(ninja -C "$build" -t targets all 2>/dev/null | cut -d: -f1)
for t in cuda_engine_test $labs; do
  if grep -qx "$t" <<<"$known"; then targets+=("$t"); fi
done
cmake --build "$build" --target "${targets[@]}" -j2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin"
for t in "${targets[@]}"; do
  f=$(find "$build" -name "$t" -type f -perm -u+x | head -1)
  cp "$f" "$stage/bin/" && strip "$stage/bin/$t"
done
# lib/: the Debian libraries the binaries link beyond the C / C++ runtime and CUDA (oneDNN, OpenBLAS, ... — the
# unit tests link the whole engine registry), so that the engine check needs no gptbench bundle for them: the
# binaries, the ~48 MB bundle and the tree together pass the 64 MiB a call carries.
if [[ $with_bundle != 1 ]]; then
  mkdir -p "$stage/lib"
  for f in "$stage"/bin/*; do ldd "$f" 2>/dev/null; done | awk '$3 ~ /^\/(usr\/)?lib\// {print $3}' | sort -u |
    grep -vE '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so|/ld-linux' |
    while read -r l; do cp -L "$l" "$stage/lib/"; done
fi
rm -rf "$carry"
mkdir -p "$carry"
tar -C "$stage" -cJf "$carry/bins.tar.xz" $(cd "$stage" && ls -d bin lib 2>/dev/null)
# (the data whenever the call is not meant to carry the bundle: a bundle left in .device-carry/gptbench from an
# earlier call is not carried by a call that names only .device-carry/cuda)
if [[ $with_bundle != 1 ]]; then
  mkdir -p "$carry/gpt2-tiny-wt2"
  cp "$shared"/models/gpt2-tiny-wt2/{config.json,model.safetensors,vocab.json,merges.txt} "$carry/gpt2-tiny-wt2/"
  cp "$shared"/data/wikitext-2-raw/wiki.test.raw "$carry/"
fi
echo "packed: ${targets[*]}"
du -sh "$carry"
