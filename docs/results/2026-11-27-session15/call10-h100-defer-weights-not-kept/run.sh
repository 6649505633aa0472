#!/usr/bin/env bash
# Session 15, call 10: the prefill kernel's producer requesting the next weights only after its block's consumers
# arrived at the barrier ending the proj / mproj phase (lab_defer_weights), against during the k loop: 12 layers
# at B1 x S128, 3 alternating rounds, and the per-phase / in-phase breakdowns.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; rm -rf $w; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 120 $w/persistent_lab --trace-only --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "persistent_lab rc $?"
cat $OUT/persistent_lab.txt
