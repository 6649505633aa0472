#!/usr/bin/env bash
# Session 16, call 4 (binaries of 9ffb50b: the fifteenth session's kernels, this session's caching audit): the GPU
# unit tests and the full engine check (accuracy, perplexity, int8, speed, the transformers anchors on this card;
# no labs) on the card that ran nothing else in this call.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" $OUT/unit_tests.txt | head
mkdir -p $OUT/check
OUT=$OUT/check WORK=$w FULL=1 SKIP_LABS=1 timeout 380 scripts/gpu/check_cuda_engine.sh 2> $OUT/check/log.txt > $OUT/check/stdout.txt; echo "engine check rc $?"
cat $OUT/check/summary.md 2>/dev/null | head -120
