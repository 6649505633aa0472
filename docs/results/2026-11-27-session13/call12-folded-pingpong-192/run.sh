#!/usr/bin/env bash
# Session 13, call 12: the folded lab's ping-pong kernel with the LM head's lessons (accumulators zeroed per tile,
# 24 / 240 registers): every check (all versions), then QKV and FC + GELU at 4,096 rows for v17, v20, v23-v25 and the
# new v28 (128 x 192 tiles a warpgroup, no statistics: a plain product with the bias / GELU epilogue).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 240 $w/layernorm_folded_lab --json $OUT/labs.jsonl > $OUT/layernorm_folded_lab.txt 2>&1; echo "layernorm_folded_lab rc $? : $(tail -n 1 $OUT/layernorm_folded_lab.txt)"
grep -E "FAIL" $OUT/layernorm_folded_lab.txt | cut -c1-160
grep -E "M4096 .* v(17|20|23|24|25|28) " $OUT/layernorm_folded_lab.txt | sed 's/ | cold.*| err/ | err/' | cut -c1-150
