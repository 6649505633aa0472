#!/usr/bin/env bash
# Session 26, call 8: the GPU unit tests of f1a001f (every setmaxnreg split through wgmma_detail::RegisterSplit;
# the same machine code by the cubin comparison here, so this is the run-time confirmation).
# Carried: .device-carry/cuda (WITH_BUNDLE=1: the check program and the unit tests) and .device-carry/gptbench
# (WITH_ORT=0; its lib/ serves them).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
w=/tmp/cuda-engine-work
o=$OUT/work
gb=/tmp/gptbench-bundle
mkdir -p "$o" "$w" "$gb"
tar -C "$w" -xJf .device-carry/cuda/bins.tar.xz && tar -C "$gb" -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
lib_wrapper "$w/tests-wrapper" "$(carried_libdir "$w" "$gb")" "$w/bin/cuda_engine_test"
timeout 240 "$w/tests-wrapper" --gtest_brief=0 > "$o/tests.txt" 2>&1
echo "rc $?" >> "$o/tests.txt"
cp "$o"/*.txt "$OUT/"
grep -E "^\[ +(FAILED|SKIPPED|PASSED) +\]|^rc " "$o/tests.txt" | tail -10
