#!/usr/bin/env bash
# Session 26, call 2: lm_head_lab again after call 1 hung in v4 (the 128 x 192 kernel that stores the logits) at the
# "odd" shape, M 200 x V 997 x K 256, for its whole 400 s: first the GPT-2 shape at 128 rows alone (v0 cuBLASLt +
# row_summary, v11 / v19 ping-pong, v26-v30 lm_head_summary_regs; v4 always runs as the others' reference), then
# every shape with v26-v30 (and v4). Each call's start goes to stderr, so that a hang names its version.
# Carried: .device-carry/lab (the stripped lab only).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT/work
mkdir -p "$o" /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
timeout 150 /tmp/lab/bin/lm_head_lab --only 128 --versions 0,11,19,26,27,28,29,30 --json "$o/lab.jsonl" > "$o/lab128.txt" 2>&1
echo "rc $?" >> "$o/lab128.txt"
timeout 150 /tmp/lab/bin/lm_head_lab --quick --versions 26,27,28,29,30 --json "$o/lab.jsonl" > "$o/labquick.txt" 2>&1
echo "rc $?" >> "$o/labquick.txt"
cp "$o"/*.txt "$o/lab.jsonl" "$OUT/" 2>/dev/null
grep -v "^(" "$o/lab128.txt" | head -40
grep -v "^(" "$o/labquick.txt" | grep -E "FAIL|check|cold|rc " | head -60
tail -3 "$o/labquick.txt"
