#!/usr/bin/env bash
# Session 27, call 1: row_groups_lab (new) — R row groups of G blocks streaming every layer's weights (copy and
# wgmma consumers, cold and hot), the exchange inside a cluster; tma_fill_lab's grid barriers on the same card.
# Carried: .device-carry/lab (the two stripped labs only).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT
mkdir -p /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
timeout 150 /tmp/lab/bin/row_groups_lab --json "$o/lab.jsonl" > "$o/row_groups.txt" 2>&1
echo "rc $?" >> "$o/row_groups.txt"
timeout 100 /tmp/lab/bin/row_groups_lab --stream --stage-kb 32 --stages 6 --json "$o/lab.jsonl" > "$o/row_groups_32k.txt" 2>&1
echo "rc $?" >> "$o/row_groups_32k.txt"
timeout 60 /tmp/lab/bin/tma_fill_lab --json "$o/lab.jsonl" > "$o/tma_fill.txt" 2>&1
echo "rc $?" >> "$o/tma_fill.txt"
cat "$o/row_groups.txt" "$o/row_groups_32k.txt"
grep -E "phases|barriers|rc " "$o/tma_fill.txt" | head -20
