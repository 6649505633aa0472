#!/usr/bin/env bash
# Session 17, call 8: after call 7 (48 m64n32k16 per warpgroup alone: ~2,460 SM cycles for the two warpgroups,
# ~1.2-1.5 us; accumulator chains change nothing) — the products' k loops (~3.1 us) look like intake (~1.3 us
# without MMAs) plus MMAs, not the larger of the two. Where does each 64-k stage wait? persistent_lab --stage-trace
# (new: PersistentArgs::lab_trace_stages, clock64 stamps per stage of each block's first item: the producer's turn,
# the request after its slot was free, the consumers seeing the data, the slot freed), with and without MMAs; then
# --weights-order (the kernel's forward time with the new stamps compiled in but off, against call 7/8 of the
# sixteenth session: 336-337 us).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 120 $w/persistent_lab --stage-trace --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "lab rc $?"
timeout 120 $w/persistent_lab --weights-order --json $OUT/labs-weights-order.jsonl > $OUT/persistent_lab-weights-order.txt 2>&1; echo "lab rc $?"
cat $OUT/persistent_lab.txt; grep -E 'round' $OUT/persistent_lab-weights-order.txt
