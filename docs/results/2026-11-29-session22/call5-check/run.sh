#!/usr/bin/env bash
# Session 22, call 5: the engine of 4af35cc (the attention's mask only on diagonal tiles) checked and timed in one
# go: check_cuda_engine.sh (GPU tests, logits / perplexity in every precision, int8 calibrated with this commit's
# bundle, speed by the anchors file's protocol, the WikiText-2 pass, the transformers anchors on the same card),
# with attention_lab (every version, every shape) and the per-kernel profile of fp16 (PROFILE=1, graphs off);
# then B8 x S512 under sustained load (3 rounds of 1,000 calls).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work
OUT=$OUT WORK=$w LABS=attention_lab PROFILE=1 timeout 540 scripts/gpu/check_cuda_engine.sh > $OUT/check.out 2> $OUT/check.log
echo "check rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|Failure" $OUT/check.out | head -20
grep '"FAILED"' $OUT/results.jsonl | cut -c1-200
OUT=$OUT WORK=$w VARIANTS="default" SHAPES=8x512 ROUNDS=3 ITERS=1000 \
  timeout 100 scripts/gpu/prefill_variants.sh 2> $OUT/sustained.log | grep -v '^{'; echo "sustained rc $?"
sed -n 1,90p $OUT/summary.md
