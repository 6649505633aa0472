#!/usr/bin/env bash
# Session 27, call 7: row_groups_lab after the review's mend (the two exchange kernels share their rank / address /
# check helpers): the exchange and the streaming cases once, to show the same checks pass and the same figures.
# Carried: .device-carry/lab (the stripped lab only).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT
mkdir -p /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
timeout 90 /tmp/lab/bin/row_groups_lab --json "$o/lab.jsonl" > "$o/row_groups.txt" 2>&1
echo "rc $?" >> "$o/row_groups.txt"
cat "$o/row_groups.txt"
