#!/usr/bin/env bash
# Session 12, call 12: the TMA-store epilogue with the columns by cp.async (v20) and GELU by tanh.approx (v21, v22).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 300 $w/layernorm_folded_lab --json $OUT/labs.jsonl > $OUT/layernorm_folded_lab.txt 2>&1; echo "layernorm_folded_lab rc $?"
grep -E " v(1|17|18|20|21|22) |PASS \(|FAIL" $OUT/layernorm_folded_lab.txt | sed 's/ | cold.*| err/ | err/' | cut -c1-160
