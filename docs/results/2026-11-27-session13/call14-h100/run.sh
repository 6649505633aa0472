#!/usr/bin/env bash
# Session 13, call 14: on an H100 — the binaries of 2256d9b (default minimum 128 rows; the final 06448d9 only raises
# it to 256, the first variant here): GPU unit tests, lm_head_lab (every check, timings), fp16 prefill A/B in
# alternating rounds (min 256 = the final default, lm_head_summary_rows=0 = the old path, min 128).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" $OUT/unit_tests.txt | head
timeout 300 $w/bin/lm_head_lab --json $OUT/labs.jsonl > $OUT/lm_head_lab.txt 2>&1; echo "lm_head_lab rc $? : $(tail -n 1 $OUT/lm_head_lab.txt)"
grep -E "M4096 .*v(0|1|19) " $OUT/lm_head_lab.txt | grep cold | cut -c1-120
WORK=$w VARIANTS="lm_head_summary_min_rows=256 lm_head_summary_rows=0 default" SHAPES=1x128,8x128,8x512,32x128 ROUNDS=3 \
  timeout 300 scripts/gpu/prefill_variants.sh 2> $OUT/variants-log.txt > $OUT/variants-summary.txt
grep -E "median" $OUT/variants-summary.txt
