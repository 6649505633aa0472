#!/usr/bin/env bash
# Session 18, call 10: the engine check on the final code (binaries of d02e2e4 packed with WITH_BUNDLE=1, the
# bundle of e909308 for the libraries and data; mapped_outputs on): GPU unit tests, logits and perplexity in
# fp32 / tf32 / fp16 / bf16, speed and the transformers anchors on the same card. int8 and labs left out (the
# device time left; int8 ran in call 4 and its path did not change but for the summaries' destination).
set -uo pipefail
OUT=$OUT WORK=/tmp/cuda-engine-work SKIP_LABS=1 SKIP_INT8=1 timeout 200 scripts/gpu/check_cuda_engine.sh > $OUT/check.log 2>&1
echo "check rc $?"
grep -E "PASSED|FAILED" $OUT/check.log | head -4
sed -n '/^| precision/,$p' $OUT/summary.md 2>/dev/null | head -60
