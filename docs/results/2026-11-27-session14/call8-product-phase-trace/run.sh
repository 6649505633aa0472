#!/usr/bin/env bash
# Session 14, call 8: inside the persistent kernel's product phases (persistent_lab --trace-only: per-block wake-up,
# first stage, k loop, rest; with and without MMAs), and the engine's persistent-path GPU test after the lab
# stamps entered the kernel (inert unless a lab passes trace_product).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 60 $w/persistent_lab --trace-only --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "persistent_lab rc $?"
cat $OUT/persistent_lab.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 100 $w/cuda_engine_test --gtest_filter='*Persistent*:*Accuracy*:*LmHead*' > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" $OUT/unit_tests.txt | head
