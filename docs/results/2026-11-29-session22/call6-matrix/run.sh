#!/usr/bin/env bash
# Session 22, call 6 (full bundle of 4af35cc + its results commit, ONNX Runtime included): configs/matrix.yaml end
# to end on the GPU machine (native CUDA fp32 / tf32 / fp16 / bf16 / int8, native CPU, ONNX Runtime CPU; all
# scenarios) with the attention's mask only on diagonal tiles; run_study.sh prints matrix_digest.py's digest.
set -uo pipefail
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee $OUT/gpu.txt
OUT=$OUT STEPS=matrix MATRIX_TIMEOUT=${MATRIX_TIMEOUT:-560} scripts/gpu/run_study.sh > $OUT/study.log 2>&1
echo "study rc $?"; tail -40 $OUT/study.log
