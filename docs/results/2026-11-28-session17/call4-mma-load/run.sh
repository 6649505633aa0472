#!/usr/bin/env bash
# Session 17, call 4: what the product phases' MMAs cost by their shape (timing only, wrong results). A QKV / FC item
# is 128 rows x 32 columns on two consumer warpgroups (m64n32k16 each: per 32K multiply-adds 2 KB of A and 1 KB of
# B read from shared memory); its k loop is 3.1 us against 1.3 without MMAs (sixteenth session). persistent_lab
# --mma-modes: in-phase traces (2 alternating rounds) of mode 0 (the kernel), 1 (only warpgroup 0 multiplies: half
# the MMAs) and 2 (only warpgroup 0, as m64n64k16: the MMA load of a 64-row x 64-column item, 2 KB of A and 2 KB of
# B per 64K). If the k loops follow the shared-memory bytes, items of 64 rows x 64 columns would shorten them.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 200 $w/persistent_lab --mma-modes --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "lab rc $?"
cat $OUT/persistent_lab.txt
