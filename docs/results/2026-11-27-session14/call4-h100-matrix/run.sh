#!/usr/bin/env bash
# Session 14, call 4 (bundle of d7649b6, the thirteenth session's kernels): configs/matrix.yaml end to end on the
# same H100 (native CUDA fp32 / tf32 / fp16 / bf16 / int8, native CPU, ONNX Runtime CPU; all scenarios).
set -uo pipefail
OUT=$OUT STEPS=matrix MATRIX_TIMEOUT=560 scripts/gpu/run_study.sh > $OUT/study.log 2>&1
echo "study rc $?"; tail -5 $OUT/study.log
mkdir -p /tmp/m && tar -C /tmp/m -xzf $OUT/matrix.tar.gz
grep -E "VALID|INVALID|cells" /tmp/m/matrix/report/Technical_Report.md | head -5
awk -F, 'NR==1{for(i=1;i<=NF;i++)h[$i]=i; next} $h["device"]=="cuda" && $h["precision"]=="fp16" {print "  " $h["scenario"] " median_ms " $h["median_ms"] " tokens_per_s " $h["tokens_per_s"] " ttft_ms " $h["ttft_ms"]}' /tmp/m/matrix/processed/latency_summary.csv
