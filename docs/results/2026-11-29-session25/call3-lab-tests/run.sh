#!/usr/bin/env bash
# Session 25, call 3 (H200): decode_persistent_lab after call 2 (the polling warp's weights back between arrival
# and wait; a timing-only switch that reads the same weight bytes row by row, 512 contiguous bytes an instruction,
# instead of the tensor-core fragments' 64 bytes of 8 rows), and the GPU unit tests (decode_mma off by default;
# its own test turns it on).
# Carried: .device-carry/cuda (the lab and the unit tests only) and .device-carry/gptbench (WITH_ORT=0), whose lib/
# serves them.
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
timeout 300 /tmp/lab/bin/cuda_engine_test > "$o/tests.out" 2>&1
echo "rc $?" >> "$o/tests.out"
cp "$o/lab.txt" "$o/tests.out" "$OUT/"
tar -C "$o" -czf "$OUT/call3.tar.gz" .
grep -E "FAILED|^time|phases|step|  [A-E] |rc|all checks" "$o/lab.txt" | head -80
grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) +\]|^rc" "$o/tests.out"
