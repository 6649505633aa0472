#!/usr/bin/env bash
# Session 18, call 4: the full engine check with int8 again in one call — binaries packed by
# `WITH_BUNDLE=1 scripts/gpu/pack_cuda_carry.sh build` (check program + GPU unit tests, no lib/) beside the gptbench
# bundle (`scripts/gpu/bundle_gptbench.sh build`: its libraries serve both, its gptbench calibrates int8), commit
# c2fbd46 (the engine of ef810e8). GPU unit tests, logits against transformers in every precision, perplexity,
# int8 calibration and checks, speed (FULL=1: bf16 and fp32 too), the transformers anchors on this card. No labs.
set -uo pipefail
OUT=$OUT WORK=/tmp/cuda-engine-work SKIP_LABS=1 FULL=1 timeout 540 scripts/gpu/check_cuda_engine.sh > $OUT/check.log 2>&1
echo "check rc $?"
cat $OUT/summary.md 2>/dev/null | head -150 || tail -30 $OUT/check.log
