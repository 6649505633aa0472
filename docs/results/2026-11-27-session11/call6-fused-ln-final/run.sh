#!/usr/bin/env bash
# Session 11, call 6: the fused residual + LayerNorm kernel with its epilogue's cluster reads in one round trip
# (a warp's rows contiguous, the partial sums of all its rows read one a lane and gathered by shuffles): lab
# (all versions, incl. the parts-left-out timings), the fused GPU tests, the engine A/B.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
for s in odd:200 proj:4096 mproj:4096 proj:1024 mproj:1024 proj:2048; do
  timeout 60 $w/bin/residual_layernorm_lab --shape $s --json $OUT/labs.jsonl 2>&1 | grep -v "^residual_layernorm_lab on\|ALL PASS"
done > $OUT/residual_layernorm_lab.txt
cut -c1-100 $OUT/residual_layernorm_lab.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test --gtest_filter='*Fused*:*LayerNormRows*:*Residual16*' > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED) |Failure|two-kernel" $OUT/unit_tests.txt | head
data=$w/data; mkdir -p $data
ln -sfn $gb/shared/models/gpt2-tiny-wt2 $data/gpt2-tiny-wt2
ln -sfn $gb/shared/data/wikitext-2-raw/wiki.test.raw $data/wiki.test.raw
OUT=$OUT WORK=$w SHAPES="8x512,32x128,8x128,1x1024" ROUNDS=3 VARIANTS="default fused_layernorm_rows=1024" \
  timeout 300 scripts/gpu/prefill_variants.sh 2> $OUT/variants.log | grep median | tee $OUT/variants-median.txt
gzip -f $OUT/variants.log $OUT/variants.jsonl
