#!/usr/bin/env bash
# Session 17, call 9: call 8's stage trace showed the products' intake falling behind (the data of stage s seen
# ~520 SM cycles after stage s-1's with MMAs, ~285 without; requests every ~290-345 cycles) — each block takes in
# all 128 rows x 768 k of activations (16 KB a stage) for a 32-column tile. The paired kernel (cluster 2: 64-column
# QKV / FC tiles, the two k halves on the two blocks of a cluster, 6 stages each) takes in half the activations per
# column. persistent_lab --stage-trace for cluster 1 and 2, then the lab's full run (checks of every variant, the
# forward times of cluster 1 and 2, the traces).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 120 $w/persistent_lab --stage-trace --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "lab rc $?"
timeout 300 $w/persistent_lab --json $OUT/labs-full.jsonl > $OUT/persistent_lab-full.txt 2>&1; echo "full lab rc $?"
cat $OUT/persistent_lab.txt; grep -E 'forward|PASSED|FAILED' $OUT/persistent_lab-full.txt
