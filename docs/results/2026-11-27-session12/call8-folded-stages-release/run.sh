#!/usr/bin/env bash
# Session 12, call 8: the LayerNorm-folded product with 5 ring slots and/or each slot released as soon as its products are done (v11-v14).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 300 $w/layernorm_folded_lab --json $OUT/labs.jsonl > $OUT/layernorm_folded_lab.txt 2>&1; echo "layernorm_folded_lab rc $?"
grep -E " v(1|10|11|12|13|14) |PASS \(|FAIL" $OUT/layernorm_folded_lab.txt | sed 's/ | cold.*| err/ | err/'
