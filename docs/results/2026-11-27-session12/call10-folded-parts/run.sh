#!/usr/bin/env bash
# Session 12, call 10: where the folded product's time goes at 4096 rows — v1, without statistics (v10), the main
# loop alone (v15, the products kept alive by a store that never happens), the ring alone (v16).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
for v in 1 10 15 16; do for s in qkv:4096 fc:4096; do
  timeout 60 $w/layernorm_folded_lab --version $v --shape $s --json $OUT/labs.jsonl >> $OUT/layernorm_folded_lab.txt 2>&1
done; done
grep -E " v[0-9]+ " $OUT/layernorm_folded_lab.txt | sed 's/ | cold.*| err/ | err/' | cut -c1-150
