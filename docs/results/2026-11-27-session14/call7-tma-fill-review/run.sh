#!/usr/bin/env bash
# Session 14, call 7: tma_fill_lab after the review mend (one report_block and one expected checksum for both kernels): same checks, same figures?
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 90 $w/tma_fill_lab --json $OUT/labs.jsonl > $OUT/tma_fill_lab.txt 2>&1; echo "tma_fill_lab rc $?"
cat $OUT/tma_fill_lab.txt
