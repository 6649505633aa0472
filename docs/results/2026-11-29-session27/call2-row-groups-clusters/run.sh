#!/usr/bin/env bash
# Session 27, call 2: row_groups_lab with the cluster shapes an H200 holds (7 x 16, 14 x 8), wgmma consumers for
# every group size, three ring shapes (32 KB x 6, the new default; 64 KB x 3; 16 KB x 12), and the exchange by bulk
# copies beside call 1's stores + cluster barrier. Carried: .device-carry/lab (the stripped lab only).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT
mkdir -p /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
for ring in "32 6" "64 3" "16 12"; do
  set -- $ring
  timeout 120 /tmp/lab/bin/row_groups_lab --stream --stage-kb $1 --stages $2 --json "$o/lab.jsonl" > "$o/stream_${1}k.txt" 2>&1
  echo "rc $?" >> "$o/stream_${1}k.txt"
  cat "$o/stream_${1}k.txt"
done
timeout 100 /tmp/lab/bin/row_groups_lab --exchange --json "$o/lab.jsonl" > "$o/exchange.txt" 2>&1
echo "rc $?" >> "$o/exchange.txt"
cat "$o/exchange.txt"
