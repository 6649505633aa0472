#!/usr/bin/env bash
# Session 25, call 6 (H200): where an 8-row persistent decode step's time goes on the CUDA-core path (the default
# for fp32 / tf32 at 5-8 sequences): decode_persistent_lab --timing-only built with ablation.patch (not committed:
# a device-global switch that skips, timing only, the LayerNorms (1), the products' FMAs (2: the weights are still
# loaded and consumed), the output stores (4), the input rows' staging (8), or all (15)).
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
grep -E "^time|^ablate|rc" "$o/lab.txt" | grep -v "tensor cores," | head -80
