#!/usr/bin/env bash
# Per-kernel profile of the CUDA engine on the GPU machine (graphs off, CUDA events between kernels; the eager
# launches inflate small kernels by their launch gaps) for each precision in PRECISIONS (default "fp16 int8"),
# prefill shapes SHAPES (default 1x128,8x512) and 32 decode steps, on a random GPT-2 124M checkpoint made by
# `gptbench init-random` (the bundle of bundle_gptbench.sh); int8 is calibrated first. Carry .device-carry
# (pack_cuda_carry.sh + bundle_gptbench.sh). Results: $OUT/profile-<precision>.txt.
set -uo pipefail
carry=${CARRY:-.device-carry/cuda}
out=${OUT:-/tmp/cuda-engine-out}
work=${WORK:-/tmp/cuda-engine-work}
mkdir -p "$out" "$work"
source "$(dirname "${BASH_SOURCE[0]}")/device_env.sh"
cuda_library_path
tar -C "$work" -xJf "$carry/bins.tar.xz"
gb=/tmp/gptbench-bundle
rm -rf "$gb" && mkdir -p "$gb" && tar -C "$gb" -xJf .device-carry/gptbench/bundle.tar.xz
export GPTBENCH_SHARED_DIR="$gb/shared"
gptbench=$gb/gptbench-wrapper
lib_wrapper "$gptbench" "$gb/lib" "$gb/bin/gptbench"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt"
m124=$work/gpt2-init
[[ -f $m124/model.safetensors ]] || "$gptbench" init-random --shape gpt2 --out "$m124" > /dev/null
for p in ${PRECISIONS:-fp16 int8}; do
  opt=()
  if [[ $p == int8 ]]; then
    timeout 120 "$gptbench" calibrate --model "$m124" --dataset "$gb/shared/data/wikitext-2/wiki.valid.tokens" \
      --method mse --samples 16 --out "$work/calib" 2>&1 | tail -2
    opt=(--opt "calibration_cache=$(ls "$work"/calib/mse/*.calib | head -1)")
  fi
  timeout 120 "$work/bin/gptbench_cuda_check" profile --model "$m124" --precision "$p" --shapes "${SHAPES:-1x128,8x512}" \
    "${opt[@]}" 2> "$out/profile-$p.txt"
  echo "== $p"; grep -v "^\[" "$out/profile-$p.txt"
done
