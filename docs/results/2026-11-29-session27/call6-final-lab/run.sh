#!/usr/bin/env bash
# Session 27, call 6: the committed row_groups_lab (aaf351b: call 5's kernels; host code reformatted and the card
# check through lab::sm90_device) run once in full — streaming with one and two wgmma consumer warpgroups, and the
# exchange. Carried: .device-carry/lab (the stripped lab only).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT
mkdir -p /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
timeout 90 /tmp/lab/bin/row_groups_lab --json "$o/lab.jsonl" > "$o/row_groups.txt" 2>&1
echo "rc $?" >> "$o/row_groups.txt"
timeout 60 /tmp/lab/bin/row_groups_lab --stream --consumers 2 --json "$o/lab.jsonl" > "$o/row_groups_c2.txt" 2>&1
echo "rc $?" >> "$o/row_groups_c2.txt"
cat "$o/row_groups.txt" "$o/row_groups_c2.txt"
