#!/usr/bin/env bash
# Session 24, call 1 (H200): decode steps of 5-8 sequences through the persistent decode kernel (rows padded to 8)
# instead of cuBLASLt. check_cuda_engine.sh (GPU unit tests with the 6-sequence bit-equality and prefill checks,
# logits, perplexity, prefill and decode speed; no int8, labs or anchors), then decode at batch 1 and 8 in
# alternating rounds: the new default against gemv_max_rows=4 (the old default: batch 8 through cuBLASLt) and the
# 5-kernel chain at 8 rows, in fp16, bf16 and fp32.
# Carried: .device-carry/cuda (WITH_BUNDLE=1) and .device-carry/gptbench (WITH_ORT=0).
set -u
w=/tmp/cuda-engine-work
o=$OUT/work
mkdir -p "$o"
OUT=$o WORK=$w SKIP_LABS=1 SKIP_ANCHORS=1 SKIP_INT8=1 DECODE_VARIANTS="gemv_max_rows=4 decode_persistent=0,gemv_max_rows=8" \
  scripts/gpu/check_cuda_engine.sh > "$o/check.out" 2> "$o/check.log"
for p in fp16 bf16 fp32; do
  OUT=$o/ab-$p WORK=$w PRECISION=$p VARIANTS="default gemv_max_rows=4 decode_persistent=0,gemv_max_rows=8" \
    SHAPES=none ROUNDS=2 scripts/gpu/prefill_variants.sh > "$o/ab-$p.txt" 2> "$o/ab-$p.log"
done
cp "$o/summary.md" "$OUT/" 2>/dev/null
tar -C "$o" -czf "$OUT/call1.tar.gz" .
grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) +\]" "$o"/*.out "$o"/tests*.txt 2>/dev/null | tail -40
tail -30 "$o/check.log" | grep -v "^ptxas"; head -80 "$o/summary.md"; cat "$o"/ab-*.txt
