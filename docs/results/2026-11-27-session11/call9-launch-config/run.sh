#!/usr/bin/env bash
# Session 11, call 9: after the review mend that builds every launch configuration of the engine (and the many-row
# lab product) through kernels::LaunchConfig — GPU unit tests, the labs whose launches changed (persistent_lab,
# gemm_large_lab --quick, residual_layernorm_lab on one shape), and the default prefill / decode timing.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure" $OUT/unit_tests.txt | head
timeout 100 $w/bin/persistent_lab --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "persistent_lab rc $?"; tail -1 $OUT/persistent_lab.txt
timeout 100 $w/bin/gemm_large_lab --quick --json $OUT/labs.jsonl > $OUT/gemm_large_lab.txt 2>&1; echo "gemm_large_lab rc $?"; tail -1 $OUT/gemm_large_lab.txt
timeout 60 $w/bin/residual_layernorm_lab --shape proj:4096 --json $OUT/labs.jsonl > $OUT/residual_layernorm_lab.txt 2>&1; echo "residual_layernorm_lab rc $?"; tail -1 $OUT/residual_layernorm_lab.txt
data=$w/data; mkdir -p $data
ln -sfn $gb/shared/models/gpt2-tiny-wt2 $data/gpt2-tiny-wt2
ln -sfn $gb/shared/data/wikitext-2-raw/wiki.test.raw $data/wiki.test.raw
OUT=$OUT WORK=$w SHAPES="1x128,8x512" ROUNDS=2 VARIANTS="default" ITERS=30 \
  timeout 200 scripts/gpu/prefill_variants.sh 2> $OUT/variants.log | grep -E "median|decode_speed" | tee $OUT/variants-median.txt | grep median
gzip -f $OUT/variants.log $OUT/variants.jsonl
