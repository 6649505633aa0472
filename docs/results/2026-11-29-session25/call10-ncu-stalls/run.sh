#!/usr/bin/env bash
# Session 25, call 10 (H200): Nsight Compute on one 8-row half decode step of each product path (CUDA cores, then
# tensor cores): decode_persistent_lab built with once.patch (not committed: --once launches the two steps once
# each, outside graphs). Call 9 gave the summary sections (ncu-summary.txt there); this call the stall reasons in detail (WarpStateStats and SourceCounters, --print-details all): where the tensor-core path's
# extra ~80-180 us a step goes, which the ablation (calls 6-8) could not pin to any work item.
# Carried: .device-carry/cuda (the lab only) and .device-carry/gptbench (WITH_ORT=0), whose lib/ serves it.
set -uo pipefail
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT
mkdir -p /tmp/lab /tmp/gb
tar -C /tmp/lab -xJf .device-carry/cuda/bins.tar.xz && tar -C /tmp/gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
export LD_LIBRARY_PATH="$(carried_libdir /tmp/lab /tmp/gb):${LD_LIBRARY_PATH:-}"
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
timeout 400 $NCU --section WarpStateStats --section SourceCounters --print-details all \
  --kernel-name regex:gpt2_decode_persistent --launch-count 2 \
  /tmp/lab/bin/decode_persistent_lab --once > "$o/ncu.txt" 2>&1
echo "ncu rc $?"
grep -iE "gpt2_decode_persistent|stall|Warp Cycles" "$o/ncu.txt" | head -120
