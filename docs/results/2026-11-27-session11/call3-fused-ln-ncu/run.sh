#!/usr/bin/env bash
# Session 11, call 3: the fused residual + LayerNorm kernel with x stored after the statistics exchange and a relaxed
# exit barrier: lab timings; Nsight Compute on one 4096-row attention-projection launch of v2 (where do its ~15 us
# of fixed cost go?); the fused GPU tests; the engine A/B on the 4096-row shapes.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 120 $w/bin/residual_layernorm_lab --json $OUT/labs.jsonl 2>&1 | tee $OUT/residual_layernorm_lab.txt
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for v in 2 1; do
  timeout 120 $NCU --section SpeedOfLight --section LaunchStats --section Occupancy --section WarpStateStats \
    --section SchedulerStats --section SourceCounters --section MemoryWorkloadAnalysis \
    --kernel-name regex:gemm_residual_layernorm --launch-skip 2 --launch-count 1 \
    $w/bin/residual_layernorm_lab --version $v --shape proj:4096 > $OUT/ncu-v$v-proj4096.txt 2>&1
  echo "ncu v$v rc $?"
done
grep -E "Duration|Elapsed Cycles|SM Frequency|Compute \(SM\) Throughput|Memory Throughput|Stall|Warp Cycles Per Issued|Issued Warp" $OUT/ncu-v2-proj4096.txt | head -30
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test --gtest_filter='*Fused*:*LayerNormRows*:*Residual16*' > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED) |Failure|two-kernel" $OUT/unit_tests.txt | head
data=$w/data; mkdir -p $data
ln -sfn $gb/shared/models/gpt2-tiny-wt2 $data/gpt2-tiny-wt2
ln -sfn $gb/shared/data/wikitext-2-raw/wiki.test.raw $data/wiki.test.raw
OUT=$OUT WORK=$w SHAPES="8x512,32x128,1x1024" ROUNDS=3 VARIANTS="default fused_layernorm_rows=1024" \
  timeout 300 scripts/gpu/prefill_variants.sh 2> $OUT/variants.log | grep median | tee $OUT/variants-median.txt
gzip -f $OUT/variants.log $OUT/variants.jsonl
