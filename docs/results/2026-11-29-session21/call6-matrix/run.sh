#!/usr/bin/env bash
# Session 21, call 6 (bundle of this session's last engine commit, ONNX Runtime included): configs/matrix.yaml end
# to end on the GPU machine (native CUDA fp32 / tf32 / fp16 / bf16 / int8, native CPU, ONNX Runtime CPU; all
# scenarios) with the key split on by default (its B1 x S1024 cell); run_study.sh prints matrix_digest.py's digest.
set -uo pipefail
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee $OUT/gpu.txt
OUT=$OUT STEPS=matrix MATRIX_TIMEOUT=${MATRIX_TIMEOUT:-560} scripts/gpu/run_study.sh > $OUT/study.log 2>&1
echo "study rc $?"; tail -40 $OUT/study.log
