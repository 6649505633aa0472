#!/usr/bin/env bash
# Session 25, call 4 (H200): decode_persistent_lab with two barrier switches, on both product paths: a second
# __syncthreads after the arrival's release (no weight request in flight while its fence runs), and relaxed polls
# with one fence after the last; the tensor-core variants' phases traced (call 3: their phases end 5-7 us after the
# last block's arrival wherever the barrier carries weight requests; reading the weights row by row saved only 5 %).
# Carried: .device-carry/cuda (the lab only) and .device-carry/gptbench (WITH_ORT=0), whose lib/ serves it.
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT/work
mkdir -p "$o" /tmp/lab /tmp/gb
tar -C /tmp/lab -xJf .device-carry/cuda/bins.tar.xz && tar -C /tmp/gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
export LD_LIBRARY_PATH="$(carried_libdir /tmp/lab /tmp/gb):${LD_LIBRARY_PATH:-}"
timeout 400 /tmp/lab/bin/decode_persistent_lab --json "$o/lab.jsonl" > "$o/lab.txt" 2>&1
echo "rc $?" >> "$o/lab.txt"
cp "$o/lab.txt" "$OUT/"
tar -C "$o" -czf "$OUT/call4.tar.gz" .
grep -E "FAILED|^time|phases|step|  [A-E] |rc|all checks" "$o/lab.txt" | grep -v "^time  bf16\|^phases bf16" | head -120
