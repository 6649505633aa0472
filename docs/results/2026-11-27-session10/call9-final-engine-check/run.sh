#!/usr/bin/env bash
# Session 10, call 9 (the final code: layernorm_rows=2 by default): the whole engine check (FULL, no labs: their
# kernels did not change) with the transformers anchors on the same card; the GPU unit tests run inside it.
set -uo pipefail
OUT=$OUT FULL=1 SKIP_LABS=1 scripts/gpu/check_cuda_engine.sh > $OUT/check.log 2>&1
echo "check rc $?"
grep -E "PASSED|FAILED" $OUT/check.log | head -5
cat $OUT/summary.md
