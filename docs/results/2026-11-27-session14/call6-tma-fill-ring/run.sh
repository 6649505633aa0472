#!/usr/bin/env bash
# Session 14, call 6: tma_fill_lab phases again, with mode 4 (fresh data through a ring of 8 chunk slots, as the persistent kernel).
# every block then loads the whole 192 / 96 / 48 KB by TMA between grid barriers).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 90 $w/tma_fill_lab --json $OUT/labs.jsonl > $OUT/tma_fill_lab.txt 2>&1; echo "tma_fill_lab rc $?"
cat $OUT/tma_fill_lab.txt
