#!/usr/bin/env bash
# Session 12, call 5: the LayerNorm-folded product's lab with 192 x 192 tiles (v6, v7) (checks against double, timing against the LayerNorm
# kernel + cuBLASLt) before it goes into the engine.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 300 $w/layernorm_folded_lab --json $OUT/labs.jsonl > $OUT/layernorm_folded_lab.txt 2>&1; echo "layernorm_folded_lab rc $?"
cat $OUT/layernorm_folded_lab.txt
