#!/usr/bin/env bash
# Session 25, call 8 (H200): the ablation of calls 6-7 (ablation.patch here, not committed) with two more switches
# on the tensor-core path: 16 skips the partial sums' block-level reduction (no __syncthreads, no shared-memory
# partials, no finishing), 32 skips the weight requests themselves; 15 / 31 also with 7 product warps (the polling
# warp without weights). Which part of that path's request / wait / reduce structure costs the ~345 us a step.
# Carried: .device-carry/cuda (the lab only) and .device-carry/gptbench (WITH_ORT=0), whose lib/ serves it.
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT/work
mkdir -p "$o" /tmp/lab /tmp/gb
tar -C /tmp/lab -xJf .device-carry/cuda/bins.tar.xz && tar -C /tmp/gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
export LD_LIBRARY_PATH="$(carried_libdir /tmp/lab /tmp/gb):${LD_LIBRARY_PATH:-}"
timeout 300 /tmp/lab/bin/decode_persistent_lab --timing-only --json "$o/lab.jsonl" > "$o/lab.txt" 2>&1
echo "rc $?" >> "$o/lab.txt"
cp "$o/lab.txt" "$OUT/"
grep -E "^ablate half  rows 8|rc" "$o/lab.txt"
