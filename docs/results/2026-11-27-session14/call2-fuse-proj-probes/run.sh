#!/usr/bin/env bash
# Session 14, call 2: persistent_lab with the fuse_proj probes (timing only: no slices / no partial stores / no
# projection) and the row phase's partial loads four at a time.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 300 $w/persistent_lab --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "persistent_lab rc $?"
grep -E "FAILED|NO |launch failed" $OUT/persistent_lab.txt | head -20
grep -E "^\[fuse|^cluster .*forward|by phase|slowest" $OUT/persistent_lab.txt | sed 's/ *traced forward, us per layer by phase (block 0, ends at its barrier exits)/   phase/; s/ *of which the slowest block.s work (the rest: the barrier)/   work /; s/x restore.*//'
tail -n 1 $OUT/persistent_lab.txt
