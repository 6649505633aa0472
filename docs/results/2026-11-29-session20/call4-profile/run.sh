#!/usr/bin/env bash
# Session 20, call 4 (binaries of d1f2ed7): where the fp16 B8 x S512 and B1 x S128 prefills spend their time now —
# the engine's per-kernel profile (gptbench_cuda_check profile: graphs off, CUDA events between kernels, 10 calls a
# shape; eager, so each kernel's time includes its launch gap) — the last per-kernel table of B8 x S512 is the tenth
# session's Nsight Compute one, before the LM head with the summary in its epilogue and the 16-bit residual stream.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work
# the 124M checkpoint (reference.py prepare) and a graph-timed baseline of the same shapes on this card
OUT=$OUT WORK=$w VARIANTS="default" SHAPES=1x128,8x512 ROUNDS=1 ITERS=50 timeout 150 scripts/gpu/prefill_variants.sh 2> $OUT/engine.log | grep -v decode
gb=/tmp/gptbench-bundle
timeout 120 env LD_LIBRARY_PATH="$gb/lib:$LD_LIBRARY_PATH" $w/bin/gptbench_cuda_check profile --model $w/gpt2-random \
  --precision fp16 --shapes 8x512,1x128 2> $OUT/profile-fp16.txt; echo "profile rc $?"
cat $OUT/profile-fp16.txt | head -120
