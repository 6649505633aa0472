#!/usr/bin/env bash
# Session 16, call 6: where the persistent prefill kernel's time goes as the rows shrink — persistent_lab
# --trace-only at B1 x S128, S64 and S32 (12 layers, fp16, head counters on: the engine's kernel, with and without
# its MMAs): per phase and per product (wake, first activation stage, k loop, rest). Does a phase's time follow
# the activation bytes each block takes in, or is it a fixed cost?
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 120 $w/persistent_lab --trace-only --trace-shape 1x128 --trace-shape 1x64 --trace-shape 1x32 --trace-shape 1x128 --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "lab rc $?"
cat $OUT/persistent_lab.txt
