#!/usr/bin/env bash
# Session 26, call 3: call 2 hung in v4 (the 128 x 192 kernel storing the logits) at 128 rows too. Here: (1) HEAD's
# lm_head_lab (04af6c2, built the same way) at 128 rows, to tell a fault of this session's change from one of the
# machine; (2) this session's lab without v4 (v30, lm_head_summary_regs storing the logits, is the reference) at
# 128 rows; (3) every shape with v26-v30.
# Carried: .device-carry/lab (the two stripped labs only).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT/work
mkdir -p "$o" /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
timeout 60 /tmp/lab/bin/lm_head_lab_head --only 128 > "$o/head128.txt" 2>&1
echo "rc $?" >> "$o/head128.txt"
timeout 100 /tmp/lab/bin/lm_head_lab --only 128 --versions 30,26,27,28,29,0,19 --json "$o/lab.jsonl" > "$o/lab128.txt" 2>&1
echo "rc $?" >> "$o/lab128.txt"
timeout 90 /tmp/lab/bin/lm_head_lab --quick --versions 30,26,27,28,29 --json "$o/lab.jsonl" > "$o/labquick.txt" 2>&1
echo "rc $?" >> "$o/labquick.txt"
cp "$o"/*.txt "$o/lab.jsonl" "$OUT/" 2>/dev/null
head -12 "$o/head128.txt"; tail -2 "$o/head128.txt"
grep -v "^(" "$o/lab128.txt" | head -30
grep -v "^(" "$o/labquick.txt" | grep -E "FAIL|check|cold|rc " | head -40
tail -2 "$o/labquick.txt"
