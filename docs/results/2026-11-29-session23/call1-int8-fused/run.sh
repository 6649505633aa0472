#!/usr/bin/env bash
# Session 23, call 1 and (after the dequantize fix) call 2 (H200): the int8 path with option int8_fused (each product's input quantized by the kernel
# that makes it; the LM head's summary / NLL read from its int32 products) checked by check_cuda_engine.sh (GPU
# unit tests, logits, perplexity, speed, per-kernel profile), then against int8_fused=0 (the separate kernels):
# prefill in 3 alternating rounds, a profile, the tiny model's perplexity and the whole WikiText-2 pass.
# Carried: .device-carry/cuda (WITH_BUNDLE=1) and .device-carry/gptbench (WITH_ORT=0).
set -u
w=/tmp/cuda-engine-work
o=$OUT/work
mkdir -p "$o"
OUT=$o WORK=$w SKIP_LABS=1 SKIP_ANCHORS=1 PROFILE=1 scripts/gpu/check_cuda_engine.sh > "$o/check.out" 2> "$o/check.log"
calib=$(ls $w/calib-124m/mse/*.calib | head -1)
calib_tiny=$(ls $w/calib-tiny/mse/*.calib | head -1)
bin=$w/gptbench_cuda_check-wrapper
[[ -x $bin ]] || bin=$w/bin/gptbench_cuda_check
timeout 60 "$bin" ppl --model $w/data/gpt2-tiny-wt2 --precision int8 --opt calibration_cache=$calib_tiny,int8_fused=0 \
  --tokens $w/wt2_test.bin --expect 581.1065448201081 --json "$o/separate.jsonl" 2>> "$o/separate.log"
timeout 60 "$bin" ppl --model $w/gpt2-random --precision int8 --opt calibration_cache=$calib,int8_fused=0 \
  --tokens $w/wt2_test.bin --json "$o/separate.jsonl" 2>> "$o/separate.log"
timeout 120 "$bin" profile --model $w/gpt2-random --precision int8 --opt calibration_cache=$calib,int8_fused=0 \
  --shapes 1x128,8x512 2> "$o/profile-int8-separate.txt"
OUT=$o/ab WORK=$w PRECISION=int8 VARIANTS="calibration_cache=$calib calibration_cache=$calib,int8_fused=0" \
  SHAPES=1x128,8x128,8x512,32x128,1x1024 ROUNDS=3 ITERS=50 scripts/gpu/prefill_variants.sh > "$o/ab.txt" 2> "$o/ab.log"
cp "$o/ab.txt" "$o/work-summary.md" 2>/dev/null
cp "$o/summary.md" "$o/ab.txt" "$OUT/" 2>/dev/null
tar -C "$o" -czf "$OUT/call1.tar.gz" .
tail -40 "$o/check.log" | grep -v "^ptxas"; cat "$o/summary.md" | head -80; cat "$o/ab.txt"
