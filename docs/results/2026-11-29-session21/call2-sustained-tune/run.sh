#!/usr/bin/env bash
# Session 21, call 2: the autotune at the power limit (new option gemm_tune_load=sustained: cuBLASLt's candidates
# timed in windows of back-to-back calls once the card holds its limit) against the default cold single-call
# autotune, on the B8 x S512 fp16 prefill under sustained load (3 alternating rounds of 1,000 back-to-back calls);
# the GPU accuracy tests with the new variant; both tunings' logs (every candidate's time, the pick); and
# energy_bound.py with the LM head as one product.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work
(nvidia-smi --query-gpu=timestamp,power.draw.average,power.draw.instant,clocks.sm,temperature.gpu --format=csv -lms 100 > $OUT/nvsmi.csv 2>&1 &)
OUT=$OUT WORK=$w VARIANTS="default gemm_tune_load=sustained" SHAPES=8x512 ROUNDS=3 ITERS=1000 \
  timeout 200 scripts/gpu/prefill_variants.sh 2> $OUT/sustained.log; echo "sustained rc $?"
pkill -f 'nvidia-smi --query-gpu=timestamp' || true
lib=$w/lib; [[ -d $lib ]] || lib=/tmp/gptbench-bundle/lib
for opt in profile=1 gemm_tune_load=sustained,profile=1; do
  echo "== tuning log: $opt"
  LD_LIBRARY_PATH=$lib:$LD_LIBRARY_PATH timeout 90 $w/bin/gptbench_cuda_check bench --model $w/gpt2-random --precision fp16 \
    --shapes 8x512 --iters 5 --warmup 1 --decode-new 2 --opt $opt --json $OUT/tune-logs.jsonl 2>&1 | grep -E "gemm tune|error" | cut -c1-1500
done
echo "== GPU tests"
LD_LIBRARY_PATH=$lib:$LD_LIBRARY_PATH timeout 240 $w/bin/cuda_engine_test --gtest_brief=1 > $OUT/gpu-tests.txt 2>&1; echo "tests rc $?"
tail -5 $OUT/gpu-tests.txt
timeout 120 python3 scripts/gpu/energy_bound.py --json $OUT/energy.jsonl --seconds 4 2> $OUT/energy.log; echo "energy rc $?"
