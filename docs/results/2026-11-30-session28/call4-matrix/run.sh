#!/usr/bin/env bash
# Session 28, call 4 (bundle of 72cf57c, ONNX Runtime included; gpt2-tiny-wt2's weights taken out of it: the matrix
# does not load them, and with them bundle and tree pass the 64 MiB a call carries): configs/matrix.yaml end to end on the GPU
# machine (native CUDA fp32 / tf32 / fp16 / bf16 / int8 — fp16 / bf16 decode at batch 8 now through the persistent
# decode step with the LM head through cuBLASLt — native CPU, ONNX Runtime CPU; all scenarios); run_study.sh
# prints matrix_digest.py's digest. MATRIX_TIMEOUT 540: the session's device time left (~12 minutes) bounds it.
set -uo pipefail
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee $OUT/gpu.txt
OUT=$OUT STEPS=matrix MATRIX_TIMEOUT=${MATRIX_TIMEOUT:-540} scripts/gpu/run_study.sh > $OUT/study.log 2>&1
echo "study rc $?"; tail -40 $OUT/study.log
