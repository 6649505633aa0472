#!/usr/bin/env bash
# Session 21, call 5: the final engine (attention_ksplit on by default) checked and timed in one go on one card:
# check_cuda_engine.sh (GPU tests, logits / perplexity in every precision, int8 calibration with the bundle of
# this commit, speed by the anchors file's protocol, the WikiText-2 pass, the transformers anchors on the same
# card; labs left out), then energy_bound.py (the LM head now over the padded vocabulary), then a short
# prefill_variants.sh A/B of the key split at B1 x S1024 (also exercising the scripts' shared device_env.sh).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work
OUT=$OUT WORK=$w SKIP_LABS=1 timeout 480 scripts/gpu/check_cuda_engine.sh > $OUT/check.out 2> $OUT/check.log
echo "check rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED|Failure" $OUT/check.out | head -20
grep '"FAILED"' $OUT/results.jsonl | cut -c1-200
timeout 120 python3 scripts/gpu/energy_bound.py --json $OUT/energy.jsonl --seconds 4 2> $OUT/energy.log; echo "energy rc $?"
tail -3 $OUT/energy.log
OUT=$OUT WORK=$w VARIANTS="default attention_ksplit=0" SHAPES=1x1024,1x512 ROUNDS=2 ITERS=100 \
  timeout 120 scripts/gpu/prefill_variants.sh 2> $OUT/ab.log | grep -v '^{'; echo "ab rc $?"
sed -n 1,80p $OUT/summary.md
