#!/usr/bin/env bash
# Session 25, call 2 (H200): after call 1 (the tensor-core decode products correct but slower: their phases ended
# 5-6 us after the last block's arrival, and the 8 input rows were staged by a loop of loads waited for one by
# one). decode_persistent_lab with the input rows staged by cp.async and the polling warp's weights requested after
# the barrier's wait (the defaults now), each against its lab switch; then decode at batch 1 and 8 in fp16 in
# alternating rounds: the default against gemv_max_rows=4 (cuBLASLt at batch 8) and decode_mma=0.
# Carried: .device-carry/cuda (the check program and the lab only) and .device-carry/gptbench (WITH_ORT=0).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
w=/tmp/cuda-engine-work
o=$OUT/work
mkdir -p "$o" /tmp/lab /tmp/gb
tar -C /tmp/lab -xJf .device-carry/cuda/bins.tar.xz && tar -C /tmp/gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
LD_LIBRARY_PATH="$(carried_libdir /tmp/lab /tmp/gb):${LD_LIBRARY_PATH:-}" timeout 300 \
  /tmp/lab/bin/decode_persistent_lab --json "$o/lab.jsonl" > "$o/lab.txt" 2>&1
echo "rc $?" >> "$o/lab.txt"
for p in fp16; do
  OUT=$o/ab-$p WORK=$w PRECISION=$p VARIANTS="default gemv_max_rows=4 decode_mma=0" \
    SHAPES=none ROUNDS=2 scripts/gpu/prefill_variants.sh > "$o/ab-$p.txt" 2> "$o/ab-$p.log"
done
cp "$o/lab.txt" "$OUT/" 2>/dev/null
tar -C "$o" -czf "$OUT/call2.tar.gz" .
grep -E "FAILED|^time|phases|step|  [A-E] |rc|all checks" "$o/lab.txt" | head -80
cat "$o"/ab-*.txt
