#!/usr/bin/env bash
# Session 17, call 15: scripts/gpu/check_cuda_engine.sh as packed since cd4914c (the Debian libraries beside the
# binaries; no gptbench bundle, so no int8 rows), commit cd4914c's engine: the GPU unit tests, logits against
# transformers (B2 x S128 and, through the persistent kernel, B1 x S128), perplexity, speed. Labs skipped.
set -uo pipefail
OUT=$OUT WORK=/tmp/cuda-engine-work SKIP_LABS=1 timeout 300 scripts/gpu/check_cuda_engine.sh > $OUT/check.log 2>&1
echo "check rc $?"
tail -40 $OUT/summary.md 2>/dev/null || tail -30 $OUT/check.log
