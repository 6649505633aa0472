#!/usr/bin/env bash
# Session 27, call 3: row_groups_lab with the exact wgmma check (call 2's R 14 x 8 wgmma case failed a 1e-4 float
# check that long accumulations cannot hold) and the products timed alone (no copies); rings of 64 KB x 3, 96 KB x 2
# and 32 KB x 6. Carried: .device-carry/lab (the stripped lab only).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT
mkdir -p /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
for ring in "64 3" "96 2" "32 6"; do
  set -- $ring
  timeout 120 /tmp/lab/bin/row_groups_lab --stream --stage-kb $1 --stages $2 --json "$o/lab.jsonl" > "$o/stream_${1}k.txt" 2>&1
  echo "rc $?" >> "$o/stream_${1}k.txt"
  cat "$o/stream_${1}k.txt"
done
