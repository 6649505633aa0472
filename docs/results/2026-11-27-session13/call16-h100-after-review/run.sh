#!/usr/bin/env bash
# Session 13, call 16: after the final review mend (take_logit: one logit step shared by both epilogues; launch_with_combine:
# both launchers' check and fold in one place): GPU unit tests, lm_head_lab --quick, layernorm_folded_lab (all checks),
# and the fp16 B8 x S512 / B1 x S128 A/B once more (default vs lm_head_summary_rows=0).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" $OUT/unit_tests.txt | head
timeout 120 $w/bin/lm_head_lab --quick --json $OUT/labs.jsonl > $OUT/lm_head_lab.txt 2>&1; echo "lm_head_lab rc $? : $(tail -n 1 $OUT/lm_head_lab.txt)"
timeout 120 $w/bin/layernorm_folded_lab --json $OUT/labs.jsonl > $OUT/layernorm_folded_lab.txt 2>&1; echo "layernorm_folded_lab rc $? : $(tail -n 1 $OUT/layernorm_folded_lab.txt)"
WORK=$w VARIANTS="default lm_head_summary_rows=0" SHAPES=8x512 ROUNDS=3 \
  timeout 200 scripts/gpu/prefill_variants.sh 2> $OUT/variants-log.txt > $OUT/variants-summary.txt
grep -E "median" $OUT/variants-summary.txt
