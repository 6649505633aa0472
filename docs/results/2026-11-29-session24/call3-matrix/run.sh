#!/usr/bin/env bash
# Session 24, call 3 (full bundle of 46ed24a, ONNX Runtime included): configs/matrix.yaml end to end on the GPU
# machine (native CUDA fp32 / tf32 / fp16 / bf16 / int8 — fp32 / tf32 decode at batch 8 now through the persistent
# decode step — native CPU, ONNX Runtime CPU; all scenarios); run_study.sh prints matrix_digest.py's digest.
set -uo pipefail
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee $OUT/gpu.txt
OUT=$OUT STEPS=matrix MATRIX_TIMEOUT=${MATRIX_TIMEOUT:-560} scripts/gpu/run_study.sh > $OUT/study.log 2>&1
echo "study rc $?"; tail -40 $OUT/study.log
