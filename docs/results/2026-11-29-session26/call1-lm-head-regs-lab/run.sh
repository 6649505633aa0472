#!/usr/bin/env bash
# Session 26, call 1: lm_head_lab with lm_head_summary_regs (v26-v30: h kept by the block — part in the consumer
# warpgroups' registers, part in shared memory — and W streamed once through a deep ring of 64 x 64 boxes) against
# cuBLASLt + row_summary (v0) and the ping-pong kernel at 8 / 128 rows (--quick: no 1,024 / 4,096 rows).
# Carried: .device-carry/lab (the stripped lab only; it links the machine's CUDA libraries alone).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT/work
mkdir -p "$o" /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
timeout 400 /tmp/lab/bin/lm_head_lab --quick --json "$o/lab.jsonl" > "$o/lab.txt" 2>&1
echo "rc $?" >> "$o/lab.txt"
cp "$o/lab.txt" "$o/lab.jsonl" "$OUT/" 2>/dev/null
grep -E "FAIL|regs|v0 |W alone|v19|v11 |rc " "$o/lab.txt" | head -80
