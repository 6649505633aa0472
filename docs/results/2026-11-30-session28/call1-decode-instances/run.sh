#!/usr/bin/env bash
# Session 28, call 1 (H200): the persistent decode step as two kernel instances (CUDA-core products; tensor-core
# products for 8 rows of fp16 / bf16) instead of one 8-row kernel carrying both behind a run-time switch, and
# DecodeArgs' five lab switches removed. SASS instructions (cubins built here): half 8-row kernel 27,960 ->
# CUDA-core instance 9,776 + tensor-core instance 12,664; 4 rows 8,280 -> 7,696; 1 row 6,768 -> 6,192.
#   1. decode_persistent_lab: HEAD's binary (decode_persistent_lab_old, timing only) and the new one (checks +
#      timing), alternating: old, new (full), old, new.
#   2. check_cuda_engine.sh (GPU unit tests, logits, perplexity, prefill and decode speed; no int8, labs, anchors).
#   3. Decode at batch 1 and 8 in alternating rounds: default (batch 8 through cuBLASLt), gemv_max_rows=8 (the
#      CUDA-core persistent step at 8 rows), decode_mma=1 (the tensor-core instance).
# Carried: .device-carry/cuda (LABS=decode_persistent_lab, libraries and data packed), .device-carry/lab (the old lab).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
w=/tmp/cuda-engine-work
o=$OUT/work
mkdir -p "$o" "$w" /tmp/old
tar -C "$w" -xJf .device-carry/cuda/bins.tar.xz && tar -C /tmp/old -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
export LD_LIBRARY_PATH="$w/lib:${LD_LIBRARY_PATH:-}"
lab_run() {  # lab_run NAME BINARY ARGS...
  local name=$1; shift
  echo "+ [$(date +%T)] $name" >&2
  timeout 240 stdbuf -oL "$@" --json "$o/lab-$name.jsonl" > "$o/lab-$name.txt" 2>&1
  echo "rc $?" >> "$o/lab-$name.txt"
}
lab_run old1 /tmp/old/bin/decode_persistent_lab_old --timing-only
lab_run new1 "$w/bin/decode_persistent_lab"
lab_run old2 /tmp/old/bin/decode_persistent_lab_old --timing-only
lab_run new2 "$w/bin/decode_persistent_lab" --timing-only
unset LD_LIBRARY_PATH
cuda_library_path
OUT=$o WORK=$w SKIP_LABS=1 SKIP_ANCHORS=1 SKIP_INT8=1 DECODE_VARIANTS="gemv_max_rows=8 decode_mma=1" \
  timeout 330 scripts/gpu/check_cuda_engine.sh > "$o/check.out" 2> "$o/check.log"
OUT=$o/ab-fp16 WORK=$w PRECISION=fp16 VARIANTS="default gemv_max_rows=8 decode_mma=1" SHAPES=none ROUNDS=2 \
  timeout 150 scripts/gpu/prefill_variants.sh > "$o/ab-fp16.txt" 2> "$o/ab-fp16.log"
cp "$o"/lab-*.txt "$o/summary.md" "$o/ab-fp16.txt" "$OUT/" 2>/dev/null
tar -C "$o" -czf "$OUT/call1.tar.gz" .
for f in "$o"/lab-*.txt; do echo "== $f"; grep -E "^time|step \(|FAILED|passed|rc " "$f"; done
grep -E "check .*(FAILED|NO)" "$o"/lab-new1.txt | head
grep -E "^\[ +(FAILED|SKIPPED|PASSED) +\]|FAILED" "$o/check.out" "$o/check.log" | tail -12
grep -E "FAILED" "$o"/results.jsonl | head
cat "$o/ab-fp16.txt"; head -50 "$o/summary.md"
