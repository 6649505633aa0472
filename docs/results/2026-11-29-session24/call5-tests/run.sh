#!/usr/bin/env bash
# Session 24, call 5 (H200): the GPU unit tests after the review mend (the persistent-decode bit test builds its
# backends from one option set).
# Carried: .device-carry/cuda (WITH_BUNDLE=1) and .device-carry/gptbench (WITH_ORT=0), whose lib/ serves the tests.
set -u
source scripts/gpu/device_env.sh
cuda_library_path
w=/tmp/cuda-tests
mkdir -p $w /tmp/gb && tar -C $w -xJf .device-carry/cuda/bins.tar.xz && tar -C /tmp/gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH="$(carried_libdir $w /tmp/gb):${LD_LIBRARY_PATH:-}" timeout 300 $w/bin/cuda_engine_test > $OUT/tests.out 2>&1
echo "rc $?" >> $OUT/tests.out
grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) +\]|^rc" $OUT/tests.out
