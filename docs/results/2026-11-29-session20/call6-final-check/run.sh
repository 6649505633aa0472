#!/usr/bin/env bash
# Session 20, call 6: the final code (the ping-pong main loop shared by the LM head and the lab, 198858f's
# refactor — byte-identical cubin here — run on a GPU): check_cuda_engine.sh with the GPU unit tests, logits,
# perplexity, speed and decode, lm_head_lab --quick and gemm_pingpong_lab; int8 and anchors left out (call 1).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
OUT=$OUT WORK=/tmp/cuda-engine-work LABS="lm_head_lab gemm_pingpong_lab" SKIP_INT8=1 SKIP_ANCHORS=1 \
  timeout 420 scripts/gpu/check_cuda_engine.sh > $OUT/check.out 2> $OUT/check.log
echo "check rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|Failure" $OUT/check.out | head -20
grep '"FAILED"' $OUT/results.jsonl | cut -c1-200
grep -E "ALL PASS|FAILED \(" $OUT/check.out | head
grep -E "v1[9] |v20 |v0 " $OUT/check.out | head -20
sed -n 1,40p $OUT/summary.md
