#!/usr/bin/env bash
# Session 17, call 10: calls 8-9's stage trace says a stage's TMA intake and its MMAs take turns. Directly:
# wgmma_chain_lab --contention — a thread streams 48 copies of 16 KB through the TMA unit (192 KB of L2-resident
# source, cycled; contiguous bulk copies, and tensor copies of 128 x 64 boxes with the 128-byte swizzle as the
# kernel's) into a 4-slot ring while the block's two warpgroups run 8 chains of 48 MMAs from shared memory
# (m64n32k16 / m64n64k16): each side's cycles alone and together, 1 block and 132. Then the kernel's product loop
# in miniature (--contention's second part): an 8-slot ring of 16 KB stages, the consumers waiting for each stage,
# 4 MMAs a warpgroup on it, wait_group 1, the slot before freed; 48 and 12 stages, with and without MMAs.
# Last, an item's 12 stages with 12 slots (no request waits for a slot) and as 6 stages of 32 KB (two boxes a
# request) in 4 and 6 slots. (first-build/: this call before the tensor copies and the pipeline were added;
# second-build/: before the 12-slot and 32 KB variants.)
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 120 $w/wgmma_chain_lab --contention --json $OUT/labs.jsonl > $OUT/wgmma_chain_lab.txt 2>&1; echo "lab rc $?"
cat $OUT/wgmma_chain_lab.txt
