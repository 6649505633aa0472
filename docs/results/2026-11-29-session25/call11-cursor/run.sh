#!/usr/bin/env bash
# Session 25, call 11 (H200): decode_persistent_lab (checks and timing) after the tensor-core path's items are
# walked by a cursor instead of an integer division per item (Nsight Compute, call 10: that path's extra stall
# samples were fixed-latency waits, instruction fetch and long-scoreboard waits). cursor.patch here: the change
# measured (not kept).
# Carried: .device-carry/cuda (the lab only) and .device-carry/gptbench (WITH_ORT=0), whose lib/ serves it.
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT/work
mkdir -p "$o" /tmp/lab /tmp/gb
tar -C /tmp/lab -xJf .device-carry/cuda/bins.tar.xz && tar -C /tmp/gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
export LD_LIBRARY_PATH="$(carried_libdir /tmp/lab /tmp/gb):${LD_LIBRARY_PATH:-}"
timeout 300 /tmp/lab/bin/decode_persistent_lab --json "$o/lab.jsonl" > "$o/lab.txt" 2>&1
echo "rc $?" >> "$o/lab.txt"
cp "$o/lab.txt" "$OUT/"
grep -E "FAILED|tensor cores: x|^time  (half|bf16)  rows 8|rc|all checks" "$o/lab.txt" | head -40
