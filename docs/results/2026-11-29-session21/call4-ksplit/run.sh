#!/usr/bin/env bash
# Session 21, call 4: the attention key split in the engine (option attention_ksplit, default auto: the Hopper
# attention kernel's key tiles split between two warpgroups where the plain grid has < 2 blocks an SM and
# sequences are longer than 256). The GPU unit tests (the new AttentionKeySplitMatchesReference among them), then
# fp16 prefill A/B against attention_ksplit=0 at the shapes the rule picks (B1 x S512, B1 x S1024, B2 x S512) and
# one it leaves alone (B8 x S512: the same kernel on both sides, a noise control): 3 alternating rounds of 200
# calls.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work
OUT=$OUT WORK=$w VARIANTS="default attention_ksplit=0" SHAPES=1x512,1x1024,2x512,8x512 ROUNDS=3 ITERS=200 \
  timeout 240 scripts/gpu/prefill_variants.sh 2> $OUT/ab.log; echo "ab rc $?"
lib=$w/lib; [[ -d $lib ]] || lib=/tmp/gptbench-bundle/lib
LD_LIBRARY_PATH=$lib:$LD_LIBRARY_PATH timeout 300 $w/bin/cuda_engine_test --gtest_brief=1 > $OUT/gpu-tests.txt 2>&1; echo "tests rc $?"
grep -E "FAILED|Failure|PASSED|SKIPPED" $OUT/gpu-tests.txt | head -20
