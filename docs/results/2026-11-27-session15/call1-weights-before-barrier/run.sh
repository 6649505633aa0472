#!/usr/bin/env bash
# Session 14, call 9 (REFUSED: no device time left; ready for the next session — carry .device-carry/lab with
# persistent_lab packed as in call 8): persistent_lab --trace-only with the producer's weight requests before the barrier
# (lab_weights_before_barrier) against after the first stages: 12-layer forward, 3 alternating rounds, and the
# in-phase breakdown of both.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 90 $w/persistent_lab --trace-only --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "persistent_lab rc $?"
cat $OUT/persistent_lab.txt
