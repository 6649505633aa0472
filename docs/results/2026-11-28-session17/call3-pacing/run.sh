#!/usr/bin/env bash
# Session 17, call 3: pacing in the persistent prefill kernel. The barriers after the attention projection and the
# MLP projection take ~2 us against ~0.8 for the others (calls 1-2's traces: whole phase minus the slowest block's
# work), and those are the phases during which the next product's weights (~3.5-4.7 MB over all blocks) are
# requested in one burst. persistent_lab --pacing: 3 alternating rounds of the 12-layer B1 x S128 forward with the
# producer's weight tiles 0 / 128 / 256 / 512 / 1024 SM cycles apart, then with the barrier's polls 0 / 20 / 50 / 100 ns
# apart; traces of the kernel as it is and with the tiles 512 cycles apart.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 200 $w/persistent_lab --pacing --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "lab rc $?"
cat $OUT/persistent_lab.txt
