#!/usr/bin/env bash
# Session 23, call 3 (full bundle of the session's int8 commit + its results commit, ONNX Runtime included):
# configs/matrix.yaml end to end on the GPU machine (native CUDA fp32 / tf32 / fp16 / bf16 / int8 — int8 now with
# option int8_fused on — native CPU, ONNX Runtime CPU; all scenarios); run_study.sh prints matrix_digest.py's digest.
set -uo pipefail
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee $OUT/gpu.txt
OUT=$OUT STEPS=matrix MATRIX_TIMEOUT=${MATRIX_TIMEOUT:-560} scripts/gpu/run_study.sh > $OUT/study.log 2>&1
echo "study rc $?"; tail -40 $OUT/study.log
