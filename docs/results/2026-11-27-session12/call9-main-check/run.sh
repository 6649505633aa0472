#!/usr/bin/env bash
# Session 12, call 9: main after the twelfth session's changes (wgmma_wide.cuh's main loop took an on_slot hook, a
# no-op for the engine's kernels, and a lab-only IN_FLIGHT = 0 variant): GPU unit tests, the labs that use that main loop (lm_head_lab, gemm_large_lab
# --quick, residual_layernorm_lab on one shape) and the new layernorm_folded_lab from the packed binaries, then the
# engine check (accuracy, perplexity, speed, anchors on this card; no labs).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" $OUT/unit_tests.txt | head
timeout 60 $w/bin/lm_head_lab --json $OUT/labs.jsonl > $OUT/lm_head_lab.txt 2>&1; echo "lm_head_lab rc $?"; tail -1 $OUT/lm_head_lab.txt
timeout 60 $w/bin/gemm_large_lab --quick --json $OUT/labs.jsonl > $OUT/gemm_large_lab.txt 2>&1; echo "gemm_large_lab rc $?"; tail -1 $OUT/gemm_large_lab.txt
timeout 60 $w/bin/residual_layernorm_lab --shape proj:4096 --json $OUT/labs.jsonl > $OUT/residual_layernorm_lab.txt 2>&1; echo "residual_layernorm_lab rc $?"; tail -1 $OUT/residual_layernorm_lab.txt
timeout 60 $w/bin/layernorm_folded_lab --json $OUT/labs.jsonl > $OUT/layernorm_folded_lab.txt 2>&1; echo "layernorm_folded_lab rc $?"; tail -1 $OUT/layernorm_folded_lab.txt
# where the folded product's time goes: v1, without statistics (v10), the main loop alone (v15), the ring alone (v16)
grep -E " v(1|10|15|16) " $OUT/layernorm_folded_lab.txt | grep -E "M4096" | sed 's/ | cold.*| err/ | err/' | cut -c1-150
mkdir -p $OUT/check
OUT=$OUT/check WORK=$w FULL=1 SKIP_LABS=1 timeout 330 scripts/gpu/check_cuda_engine.sh 2> $OUT/check/log.txt; echo "engine check rc $?"
cat $OUT/check/summary.md 2>/dev/null | head -70
