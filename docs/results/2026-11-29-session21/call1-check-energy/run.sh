#!/usr/bin/env bash
# Session 21, call 1 (main at the session's first commits; engine machine code as 543c020): on one card,
# (1) check_cuda_engine.sh (GPU tests, logits / perplexity in every precision, int8 calibration, speed, WikiText-2
#     pass, transformers anchors) with the engine and the anchors now timed alike: the anchors file's protocol,
#     median of 50 calls after 10 warm-up calls, CUDA events around each call;
# (2) the engine's fp16 B8 x S512 prefill sustained (3 rounds of 1,000 back-to-back calls) with the card's power
#     and SM clock sampled every 100 ms;
# (3) scripts/gpu/energy_bound.py: the same forward's arithmetic through cuBLAS / PyTorch SDPA replayed back to back
#     at the power limit (watts, TFLOP/s, joules per forward's worth of work).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work
OUT=$OUT WORK=$w SKIP_LABS=1 timeout 480 scripts/gpu/check_cuda_engine.sh > $OUT/check.out 2> $OUT/check.log
echo "check rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|Failure" $OUT/check.out | head -20
grep '"FAILED"' $OUT/results.jsonl | cut -c1-200
(nvidia-smi --query-gpu=timestamp,power.draw.average,power.draw.instant,clocks.sm,temperature.gpu --format=csv -lms 100 > $OUT/sustained-nvsmi.csv 2>&1 &)
OUT=$OUT WORK=$w VARIANTS="default" SHAPES=8x512 ROUNDS=3 ITERS=1000 \
  timeout 100 scripts/gpu/prefill_variants.sh 2> $OUT/sustained.log; echo "sustained rc $?"
pkill -f 'nvidia-smi --query-gpu=timestamp' || true
timeout 120 python3 scripts/gpu/energy_bound.py --json $OUT/energy.jsonl --seconds 4 2> $OUT/energy.log; echo "energy rc $?"
tail -3 $OUT/energy.log
sed -n 1,80p $OUT/summary.md
