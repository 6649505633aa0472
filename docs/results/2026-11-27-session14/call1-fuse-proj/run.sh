#!/usr/bin/env bash
# Session 14, call 1: the attention projection inside the persistent kernel's attention phase (fuse_proj):
# persistent_lab (CPU reference checks of every variant, timing with per-phase breakdown), GPU unit tests, and the
# engine's fp16 prefill A/B (default vs persistent_fuse_proj=1) at B1 x S128 and B1 x S64.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 200 $w/bin/persistent_lab --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "persistent_lab rc $?"
grep -E "FAILED|NO |launch failed" $OUT/persistent_lab.txt | head -20
grep -E "^cluster .*forward|by phase|slowest" $OUT/persistent_lab.txt
tail -n 1 $OUT/persistent_lab.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 240 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" $OUT/unit_tests.txt | head -20
WORK=$w VARIANTS="default persistent_fuse_proj=1" SHAPES=1x128,1x64,2x64 ROUNDS=3 \
  timeout 200 scripts/gpu/prefill_variants.sh 2> $OUT/variants-log.txt > $OUT/variants-summary.txt
grep -E "median" $OUT/variants-summary.txt
