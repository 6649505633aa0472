#!/usr/bin/env bash
# Session 9, call 1: fafc4f8 (review mends, never run on a GPU) — GPU unit tests, persistent lab; then a per-kernel
# profile of fp16 B1xS128 / B8xS512 to see what the LM head and the summary cost after the persistent kernel.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w
tar -C $w -xJf .device-carry/cuda/bins.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
gb=/tmp/gptbench-bundle; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests_full.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED|Failure|Expected|Which is|actual" $OUT/unit_tests_full.txt | head -30
echo "== lab"; timeout 150 $w/bin/persistent_lab --json $OUT/labs.jsonl 2>&1 | grep -v "rel-norm.*ok$" > $OUT/persistent_lab.txt; echo "lab rc $?"; grep -E "head flags 1  B1 x S128|CHECKS|FAIL" $OUT/persistent_lab.txt | head -5
OUT=$OUT PRECISIONS=fp16 SHAPES=1x128,8x512 timeout 200 scripts/gpu/profile_cuda_engine.sh 2>&1 | tail -40
