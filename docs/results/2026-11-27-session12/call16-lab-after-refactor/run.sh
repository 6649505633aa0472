#!/usr/bin/env bash
# Session 12, call 16: the lab after the review mend (the three kernels' ring set-up and producer loop in one
# helper each): every version, every shape, checks included.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 120 $w/layernorm_folded_lab --json $OUT/labs.jsonl > $OUT/layernorm_folded_lab.txt 2>&1; echo "layernorm_folded_lab rc $?"
tail -n 1 $OUT/layernorm_folded_lab.txt; grep -c PASS $OUT/layernorm_folded_lab.txt; grep FAIL $OUT/layernorm_folded_lab.txt
grep -E " v(1|15|20|22|23|25) " $OUT/layernorm_folded_lab.txt | grep M4096 | sed 's/ | cold.*| err/ | err/' | cut -c1-150
