#!/usr/bin/env bash
# Session 24, call 2 (H200): the persistent decode step at 6 and 8 rows. decode_persistent_lab (bits against the
# 5-kernel chain and a double reference at rows 1, 3, 4, 6, 8; timing and per-phase stamps at rows 1, 4, 8), then
# the GPU unit tests (the per-precision gemv_max_rows default, the 6-sequence bit-equality and prefill checks).
# Carried: .device-carry/cuda (WITH_BUNDLE=1, LABS=decode_persistent_lab) and .device-carry/gptbench (WITH_ORT=0).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
w=/tmp/cuda-tests
mkdir -p $w /tmp/gb && tar -C $w -xJf .device-carry/cuda/bins.tar.xz && tar -C /tmp/gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
export LD_LIBRARY_PATH="$(carried_libdir $w /tmp/gb):${LD_LIBRARY_PATH:-}"
timeout 200 $w/bin/decode_persistent_lab --iters 50 --json $OUT/lab.jsonl > $OUT/lab.txt 2>&1
echo "rc $?" >> $OUT/lab.txt
timeout 300 $w/bin/cuda_engine_test > $OUT/tests.out 2>&1
echo "rc $?" >> $OUT/tests.out
grep -v "^ *check" $OUT/lab.txt | tail -60
grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) +\]|^rc|Failure|Expected|Which is" $OUT/tests.out | head -60
