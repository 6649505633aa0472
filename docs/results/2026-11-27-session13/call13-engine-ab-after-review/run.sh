#!/usr/bin/env bash
# Session 13, call 13: after the review mend (the LM head kernels' shared ring set-up and producer): GPU unit tests,
# lm_head_lab (every check, timings), and the fp16 prefill A/B once more (default vs lm_head_summary_rows=0).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" $OUT/unit_tests.txt | head
timeout 300 $w/bin/lm_head_lab --json $OUT/labs.jsonl > $OUT/lm_head_lab.txt 2>&1; echo "lm_head_lab rc $? : $(tail -n 1 $OUT/lm_head_lab.txt)"
grep -E "M4096 .*v(0|1|19) " $OUT/lm_head_lab.txt | grep cold | cut -c1-120
WORK=$w VARIANTS="default lm_head_summary_rows=0" SHAPES=1x128,8x512,32x128 ROUNDS=3 \
  timeout 200 scripts/gpu/prefill_variants.sh 2> $OUT/variants-log.txt > $OUT/variants-summary.txt
grep -E "median" $OUT/variants-summary.txt
