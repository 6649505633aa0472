#!/usr/bin/env bash
# Session 25, call 1 (H200): decode steps of 5-8 sequences in fp16 / bf16 with the persistent kernel's products on
# tensor cores (decode_mma, mma.sync m16n8k16). decode_persistent_lab (checks against the chain and a double
# reference, timing at rows 1 / 4 / 8), check_cuda_engine.sh (GPU unit tests, logits, perplexity, prefill and
# decode speed; no int8, other labs or anchors), then decode at batch 1 and 8 in alternating rounds: the new default
# against gemv_max_rows=4 (batch 8 through cuBLASLt, the old default) and decode_mma=0 (CUDA-core products).
# Carried: .device-carry/cuda (WITH_BUNDLE=1, LABS=decode_persistent_lab) and .device-carry/gptbench (WITH_ORT=0).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
w=/tmp/cuda-engine-work
o=$OUT/work
mkdir -p "$o" /tmp/lab /tmp/gb
tar -C /tmp/lab -xJf .device-carry/cuda/bins.tar.xz && tar -C /tmp/gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
LD_LIBRARY_PATH="$(carried_libdir /tmp/lab /tmp/gb):${LD_LIBRARY_PATH:-}" timeout 240 \
  /tmp/lab/bin/decode_persistent_lab --json "$o/lab.jsonl" > "$o/lab.txt" 2>&1
echo "rc $?" >> "$o/lab.txt"
OUT=$o WORK=$w SKIP_LABS=1 SKIP_ANCHORS=1 SKIP_INT8=1 DECODE_VARIANTS="gemv_max_rows=4 decode_mma=0,gemv_max_rows=8" \
  scripts/gpu/check_cuda_engine.sh > "$o/check.out" 2> "$o/check.log"
for p in fp16 bf16; do
  OUT=$o/ab-$p WORK=$w PRECISION=$p VARIANTS="default gemv_max_rows=4 decode_mma=0,gemv_max_rows=8" \
    SHAPES=none ROUNDS=2 scripts/gpu/prefill_variants.sh > "$o/ab-$p.txt" 2> "$o/ab-$p.log"
done
cp "$o/summary.md" "$o/lab.txt" "$OUT/" 2>/dev/null
tar -C "$o" -czf "$OUT/call1.tar.gz" .
grep -E "check|time|phases|step|  [A-E] |rc" "$o/lab.txt" | grep -v "chain's bits yes" | head -60
grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) +\]" "$o"/*.out "$o"/tests*.txt 2>/dev/null | tail -40
tail -20 "$o/check.log" | grep -v "^ptxas"; head -60 "$o/summary.md"; cat "$o"/ab-*.txt
