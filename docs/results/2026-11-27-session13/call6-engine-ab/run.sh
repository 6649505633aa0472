#!/usr/bin/env bash
# Session 13, call 6: the engine with the ping-pong LM head summary on by default (128 rows and more): GPU unit
# tests, then fp16 prefill A/B in alternating rounds — default (ping-pong), lm_head_summary_rows=0 (cuBLASLt LM head +
# row_summary, the tenth session's default path) and lm_head_pingpong=0 (the cooperative kernel).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" $OUT/unit_tests.txt | head
WORK=$w VARIANTS="default lm_head_summary_rows=0 lm_head_pingpong=0" SHAPES=1x128,8x128,8x512,32x128,1x1024 ROUNDS=3 \
  timeout 380 scripts/gpu/prefill_variants.sh 2> $OUT/variants-log.txt | tee $OUT/variants-summary.txt
tail -3 $OUT/variants-log.txt
