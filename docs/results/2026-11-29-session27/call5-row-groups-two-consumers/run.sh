#!/usr/bin/env bash
# Session 27, call 5: row_groups_lab's wgmma consumers as two warpgroups taking the stages in turn (--consumers 2)
# against one, rings of 64 KB x 3 (the wgmma cases take 32 KB x 6 from it) and 32 KB x 6; the wgmma stage pick
# fixed (call 4's 96 KB ring gave 3-tile stages that the kernel ran as 1 tile: its wgmma rows failed their checks
# and are void). Carried: .device-carry/lab (the stripped lab only).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT
mkdir -p /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
for run in "64 3 2" "32 6 2" "32 6 1" "96 2 1"; do
  set -- $run
  f="$o/stream_${1}k_c$3.txt"
  timeout 60 /tmp/lab/bin/row_groups_lab --stream --stage-kb $1 --stages $2 --consumers $3 --json "$o/lab.jsonl" > "$f" 2>&1
  echo "rc $?" >> "$f"
  cat "$f"
done
