#!/usr/bin/env bash
# Session 17, call 13: after the two-box stages (calls 11-12), would larger ones help more? wgmma_chain_lab
# --contention's miniature with an item's 12 boxes as 4 stages of three boxes and 3 stages of four, in 2 and 3 slots,
# beside the earlier cases (12 of one box, 6 of two).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 120 $w/wgmma_chain_lab --contention --json $OUT/labs.jsonl > $OUT/wgmma_chain_lab.txt 2>&1; echo "lab rc $?"
grep -E 'pipeline|PASSED|FAILED' $OUT/wgmma_chain_lab.txt | grep -E '132 blocks|PASSED|FAILED'
