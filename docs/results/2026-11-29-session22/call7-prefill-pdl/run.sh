#!/usr/bin/env bash
# Session 22, call 7: option prefill_pdl measured again on today's engine (last measured in the third session, on
# very different code): the cuBLASLt path's LayerNorm and attention kernels launched as programmatic dependents of
# the product before them, so that they become resident as its blocks retire. 3 alternating rounds of 50 calls
# after 5 warm-up calls on the shapes that take the cuBLASLt path.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
OUT=$OUT WORK=/tmp/cuda-engine-work VARIANTS="default prefill_pdl=1" SHAPES=8x512,32x128,8x128,1x1024 ROUNDS=3 \
  ITERS=50 timeout 400 scripts/gpu/prefill_variants.sh 2> $OUT/ab.log | grep -v '^{'; echo "ab rc $?"
