#!/usr/bin/env bash
# Session 13, call 11: the committed lm_head_lab (v25 summed in double): every check (full run: 1,024 and 4,096 rows too).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 300 $w/lm_head_lab --json $OUT/labs.jsonl > $OUT/lm_head_lab.txt 2>&1; echo "lm_head_lab rc $? : $(tail -n 1 $OUT/lm_head_lab.txt)"
grep -c "check PASS" $OUT/lm_head_lab.txt; grep -E "FAIL" $OUT/lm_head_lab.txt | cut -c1-160
grep -E "M4096 .*v(0|1|19|24|25) " $OUT/lm_head_lab.txt | grep cold | cut -c1-120
