#!/usr/bin/env bash
# Session 13, call 9: the full engine check of the final code (accuracy, perplexity, speed, anchors on this card;
# no labs).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
mkdir -p $OUT/check
OUT=$OUT/check WORK=$w FULL=1 SKIP_LABS=1 timeout 330 scripts/gpu/check_cuda_engine.sh 2> $OUT/check/log.txt > $OUT/check/stdout.txt; echo "engine check rc $?"
cat $OUT/check/summary.md 2>/dev/null | head -80
cd $OUT && tar -cJf check.tar.xz check && rm -rf check
