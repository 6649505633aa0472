#!/usr/bin/env bash
# Session 10, call 2 (code e02d7e2): residual_16bit on by default for fp16; the sliced LM head (lm_head_slices). GPU
# unit tests; lm_head_lab (its fold moved to kernels.cuh); prefill A/B of slicings against the default and the float
# stream, alternating rounds; the per-kernel profile of B8 x S512 with the best-guess slicing.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 240 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED|Failure|Expected|Which is|actual" $OUT/unit_tests.txt | head -30
timeout 100 $w/bin/lm_head_lab --only 128 > $OUT/lm_head_lab.txt 2>&1; echo "lm_head_lab rc $?"; grep -E "CHECK|checks|FAIL" $OUT/lm_head_lab.txt | tail -3
echo "elapsed ${SECONDS}s"
OUT=$OUT WORK=$w SHAPES="8x512,32x128,8x128" ROUNDS=2 \
  VARIANTS="default residual_16bit=0 lm_head_slices=16,lm_head_slice_rows=4096 lm_head_slices=8,lm_head_slice_rows=2048 lm_head_slices=4,lm_head_slice_rows=1024 lm_head_slices=32,lm_head_slice_rows=4096" \
  timeout 330 scripts/gpu/prefill_variants.sh 2> $OUT/variants.log | tee $OUT/variants-median.txt
echo "elapsed ${SECONDS}s"
bin=$w/bin/gptbench_cuda_check
for v in default lm_head_slices=16,lm_head_slice_rows=4096; do
  (( SECONDS > 520 )) && break
  opt=(); [[ $v != default ]] && opt=(--opt $v)
  timeout 40 $bin profile --model $w/gpt2-random --precision fp16 --shapes 8x512 "${opt[@]}" 2> $OUT/profile-$v.txt
  echo "== profile $v"; grep -v "^\[" $OUT/profile-$v.txt | grep -A9 "^profile" | head -10
done
tar -C $OUT -czf $OUT/logs.tar.gz $(cd $OUT && ls profile-*.txt variants.log lm_head_lab.txt 2>/dev/null) && rm -f $OUT/profile-*.txt $OUT/variants.log $OUT/lm_head_lab.txt
