#!/usr/bin/env bash
# Session 26, call 5: HEAD's lm_head_lab (04af6c2, the engine's LM head kernels unchanged by this session) in full
# --quick mode, odd shapes first: calls 1-2 hung in v4 (lm_head_summary<192, 5> storing the logits) with the
# experiment's lab binary, at M200 x V997 x K256 and at 128 rows; call 3 ran HEAD's v4 at 128 rows without a
# hang. Does HEAD's v4 hang at the odd shape?
# Carried: .device-carry/lab (HEAD's stripped lab only).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT/work
mkdir -p "$o" /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
timeout 150 /tmp/lab/bin/lm_head_lab_head --quick > "$o/lab.txt" 2>&1
echo "rc $?" >> "$o/lab.txt"
cp "$o/lab.txt" "$OUT/"
grep -E "check|rc |ALL|FAIL" "$o/lab.txt" | head -30; grep -c "check PASS" "$o/lab.txt"; tail -3 "$o/lab.txt"
