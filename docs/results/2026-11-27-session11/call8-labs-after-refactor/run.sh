#!/usr/bin/env bash
# Session 11, call 8: the two labs after the lab-only refactor (lab_cublaslt.cuh's product descriptors) — checks
# and timings of residual_layernorm_lab (all shapes) and lm_head_lab.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 150 $w/residual_layernorm_lab --json $OUT/labs.jsonl > $OUT/residual_layernorm_lab.txt 2>&1; echo "residual_layernorm_lab rc $?"
timeout 150 $w/lm_head_lab --json $OUT/labs.jsonl > $OUT/lm_head_lab.txt 2>&1; echo "lm_head_lab rc $?"
tail -2 $OUT/residual_layernorm_lab.txt; tail -2 $OUT/lm_head_lab.txt
python3 -c "
import json
for l in open('$OUT/labs.jsonl'): json.loads(l)
print('labs.jsonl: valid JSON')"
