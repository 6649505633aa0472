#!/usr/bin/env bash
# Session 11, call 2: the fused residual + LayerNorm kernel after call 1 (epilogue parameters staged in shared
# memory, the stream's old values copied by cp.async during the main loop; lab v1 128 x 192 in clusters of 4, v2
# 64 x 384 in clusters of 2, the engine's): GPU unit tests, the lab, the engine A/B default vs
# fused_layernorm_rows=1024 (3 alternating rounds).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 120 $w/bin/residual_layernorm_lab --json $OUT/labs.jsonl 2>&1 | tee $OUT/residual_layernorm_lab.txt
echo "lab rc ${PIPESTATUS[0]}"
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 240 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED|Failure|Expected|Which is|actual|max difference|two-kernel" $OUT/unit_tests.txt | head -30
data=$w/data; mkdir -p $data
ln -sfn $gb/shared/models/gpt2-tiny-wt2 $data/gpt2-tiny-wt2
ln -sfn $gb/shared/data/wikitext-2-raw/wiki.test.raw $data/wiki.test.raw
OUT=$OUT WORK=$w SHAPES="8x512,32x128,8x128,1x1024,2x256" ROUNDS=3 VARIANTS="default fused_layernorm_rows=1024" \
  timeout 300 scripts/gpu/prefill_variants.sh 2> $OUT/variants.log | tee $OUT/variants-median.txt
gzip -f $OUT/variants.log
