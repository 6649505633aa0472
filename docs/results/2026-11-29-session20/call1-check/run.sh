#!/usr/bin/env bash
# Session 20, call 1: the engine of d1f2ed7 (main; 4a3e58b's shared LM head fold not yet run on a GPU) checked and
# timed in one go on one card: scripts/gpu/check_cuda_engine.sh with the GPU unit tests, logits and perplexity in
# every precision, int8 calibration (gptbench bundle carried), speed, the WikiText-2 pass and the transformers
# anchors (SDPA / eager) on the same card; labs left out. Then the fp16 B8 x S512 prefill sustained: 3 rounds of
# 1,000 calls back to back (~2 s each; the card reaches its power limit), beside the check's 30-call figure.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work
OUT=$OUT WORK=$w SKIP_LABS=1 timeout 420 scripts/gpu/check_cuda_engine.sh > $OUT/check.out 2> $OUT/check.log
echo "check rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|Failure" $OUT/check.out | head -20
grep '"FAILED"' $OUT/results.jsonl | cut -c1-200
(nvidia-smi --query-gpu=timestamp,power.draw,clocks.sm,temperature.gpu --format=csv -lms 200 > $OUT/sustained-nvsmi.csv 2>&1 &)
OUT=$OUT WORK=$w VARIANTS="default" SHAPES=8x512 ROUNDS=3 ITERS=1000 \
  timeout 100 scripts/gpu/prefill_variants.sh 2> $OUT/sustained.log; echo "sustained rc $?"
pkill -f 'nvidia-smi --query-gpu=timestamp' || true
sed -n 1,60p $OUT/summary.md
