#!/usr/bin/env bash
# Session 16, call 7: after call 6 (the products' k loops independent of the rows): the prefill kernel's producer
# requesting the next item's weights after all of an item's activation stages instead of after its first 8 (QKV
# and FC have 12: stages 9-12 queued behind 48 KB of weights in the TMA unit). persistent_lab --weights-order:
# 3 alternating rounds of the 12-layer B1 x S128 forward, then both variants' in-phase traces.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 120 $w/persistent_lab --weights-order --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "lab rc $?"
cat $OUT/persistent_lab.txt
