#!/usr/bin/env bash
# Session 13, call 4: lm_head_lab with the ping-pong LM head summary kernel (v5-v18: accumulators zeroed per tile, cooperative SUM_FLOAT) against cuBLASLt + row_summary (v0)
# and the cooperative kernel (v1-v4): every check, timings at 128 / 8 / 1024 / 4096 rows, then 4096 rows twice more.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 300 $w/lm_head_lab --quick --json $OUT/labs.jsonl > $OUT/lm_head_lab.txt 2>&1; echo "lm_head_lab rc $? : $(tail -n 1 $OUT/lm_head_lab.txt)"
for r in 1 2; do timeout 60 $w/lm_head_lab --only 4096 > $OUT/only4096-$r.txt 2>&1; echo "only 4096 round $r rc $?"; done
grep -E "FAIL" $OUT/lm_head_lab.txt | cut -c1-160; grep -h -E "check" $OUT/only4096-1.txt | cut -c1-200
grep -h -E "cold" $OUT/only4096-*.txt | cut -c1-120
