#!/usr/bin/env bash
# Session 9, call 3: the LM head lab with the tiled weight copy (DRAM locality), GPU unit tests, engine A/B.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w
tar -C $w -xJf .device-carry/cuda/bins.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
echo "== lab"; timeout 200 $w/bin/lm_head_lab --quick --json $OUT/labs.jsonl > $OUT/lm_head_lab.txt 2>&1; echo "lab rc $?"; grep -E "cold|FAIL|ALL" $OUT/lm_head_lab.txt
gb=/tmp/gptbench-bundle; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests_full.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED|Failure|Expected|Which is|actual|row |sequence " $OUT/unit_tests_full.txt | head -30
OUT=$OUT VARIANTS="default lm_head_summary_rows=0 lm_head_tiled=0" SHAPES=1x128,1x64 ROUNDS=3 timeout 240 scripts/gpu/prefill_variants.sh 2>&1 | grep "median"
