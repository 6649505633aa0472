#!/usr/bin/env bash
# Session 20, call 2 (bundle of d1f2ed7, git_dirty false: 4a3e58b's shared LM head fold; the LM head phase off):
# configs/matrix.yaml end to end on the GPU machine
# (native CUDA fp32 / tf32 / fp16 / bf16 / int8, native CPU, ONNX Runtime CPU; all scenarios) with the fifteenth
# session's persistent decode step, the seventeenth's two-box ring stages, the eighteenth's mapped outputs and the nineteenth's counters.
set -uo pipefail
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee $OUT/gpu.txt
OUT=$OUT STEPS=matrix MATRIX_TIMEOUT=${MATRIX_TIMEOUT:-570} scripts/gpu/run_study.sh > $OUT/study.log 2>&1
echo "study rc $?"; tail -5 $OUT/study.log
mkdir -p /tmp/m && tar -C /tmp/m -xzf $OUT/matrix.tar.gz
grep -E "VALID|INVALID|cells" /tmp/m/matrix/report/Technical_Report.md | head -5
awk -F, 'NR==1{for(i=1;i<=NF;i++)h[$i]=i; next} $h["device"]=="cuda" && $h["precision"]=="fp16" {print "  " $h["scenario"] " median_ms " $h["median_ms"] " tokens_per_s " $h["tokens_per_s"] " ttft_ms " $h["ttft_ms"]}' /tmp/m/matrix/processed/latency_summary.csv
python3 -c "
import json; g=json.load(open('/tmp/m/matrix/processed/gates.json'))
print(g['verdict']); [print(' ', x['name'], x['status'], x['summary'][:300]) for x in g['gates']]"
