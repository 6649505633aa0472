#!/usr/bin/env bash
# Session 10, call 5 (code 17eaa32) on an H100: the whole engine check (FULL, no labs) with the transformers anchors,
# the GPU unit tests inside it; then configs/matrix.yaml restricted to its CUDA backends (all 7 scenarios).
set -uo pipefail
OUT=$OUT FULL=1 SKIP_LABS=1 scripts/gpu/check_cuda_engine.sh > $OUT/check.log 2>&1
echo "check rc $?"
grep -E "PASSED|FAILED" $OUT/check.log | head -5
grep -E "^\| (fp16|bf16) \||B8 x S512|B1 x S128|decode fp16 \[default\]" $OUT/summary.md
OUT=$OUT STEPS=matrix MATRIX_TIMEOUT=300 scripts/gpu/run_study.sh \
  --set "backends=[{name: native, device: cuda, precisions: [fp32, tf32, fp16, bf16, int8]}]" > $OUT/study.log 2>&1
echo "study rc $?"; grep -E "cells|exit" $OUT/study.log | tail -3
mkdir -p /tmp/m && tar -C /tmp/m -xzf $OUT/matrix.tar.gz
head -1 /tmp/m/matrix/report/Technical_Report.md
awk -F, 'NR==1{for(i=1;i<=NF;i++)h[$i]=i; next} $h["device"]=="cuda" && ($h["precision"]=="fp16" || $h["precision"]=="bf16") {print "  " $h["precision"] " " $h["scenario"] " B" $h["batch"] " " $h["seq"] $h["prompt"] " median_ms " $h["median_ms"] " tokens_per_s " $h["tokens_per_s"] " ttft_ms " $h["ttft_ms"]}' /tmp/m/matrix/processed/latency_summary.csv
