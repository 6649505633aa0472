#!/usr/bin/env bash
# Session 9, call 9: the review mends (shared main loop, shared lab timing) on a GPU: GPU unit tests, lm_head_lab,
# gemm_large_lab --quick.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests_full.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED|Failure" $OUT/unit_tests_full.txt | head -10
timeout 150 $w/bin/lm_head_lab --quick > $OUT/lm_head_lab.txt 2>&1; echo "lm_head_lab rc $?"; grep -E "alone|cold|FAIL|ALL" $OUT/lm_head_lab.txt
timeout 120 $w/bin/gemm_large_lab --quick --version 2 > $OUT/gemm_large_lab.txt 2>&1; echo "gemm_large_lab rc $?"; tail -4 $OUT/gemm_large_lab.txt
