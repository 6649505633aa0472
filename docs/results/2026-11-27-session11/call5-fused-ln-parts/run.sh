#!/usr/bin/env bash
# Session 11, call 5: where the fused residual + LayerNorm kernel's ~13 us of fixed cost goes: residual_layernorm_lab
# versions 3-5 (v2 with parts left out: launch only, main loop only, epilogue only) on three shapes.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
for s in odd:200 proj:4096 mproj:4096 proj:1024; do
  timeout 60 $w/residual_layernorm_lab --shape $s --json $OUT/labs.jsonl 2>&1 | grep -v "^residual_layernorm_lab on\|ALL PASS" | cut -c1-100
done | tee $OUT/residual_layernorm_lab.txt
