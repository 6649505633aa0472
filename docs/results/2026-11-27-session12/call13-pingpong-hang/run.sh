#!/usr/bin/env bash
# Session 12, call 13: the ping-pong kernel (v23-v25: each consumer warpgroup a whole tile, the two alternating) against v20.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 300 $w/layernorm_folded_lab --json $OUT/labs.jsonl > $OUT/layernorm_folded_lab.txt 2>&1; echo "layernorm_folded_lab rc $?"
grep -E " v(15|20|23|24|25) |PASS \(|FAIL" $OUT/layernorm_folded_lab.txt | sed 's/ | cold.*| err/ | err/' | cut -c1-160
