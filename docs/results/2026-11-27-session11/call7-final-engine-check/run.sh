#!/usr/bin/env bash
# Session 11, call 7 (the final code: option fused_layernorm_rows, off; the main loop of wgmma_wide.cuh shared):
# the whole engine check (FULL) with the transformers anchors on the same card and the two labs whose code changed
# (residual_layernorm_lab, lm_head_lab); the GPU unit tests run inside it.
set -uo pipefail
OUT=$OUT FULL=1 LABS="residual_layernorm_lab lm_head_lab" scripts/gpu/check_cuda_engine.sh > $OUT/check.log 2>&1
echo "check rc $?"
grep -E "PASSED|FAILED|ALL PASS" $OUT/check.log | head -8
cat $OUT/summary.md
