#!/usr/bin/env bash
# Session 17, call 6: after call 5 (2 / 4 accumulator chains did not shorten the k loops: not the MMAs' dependency) —
# do the consumers wait too early? Each stage's MMA group is committed and the one before it awaited before the
# ring slot is freed (1 group in flight). persistent_lab --mma-depth with PersistentArgs::mma_depth 1 / 2 / 3: the
# consumers keep that many groups in flight and free the slot of stage s-depth. Checks (fp16, bf16, every kernel
# variant; depth 2 and 3), 3 alternating rounds of the 12-layer forward at B1 x S128 and S64 with depth 1 / 2 / 3,
# traces for each. (The chains code of call 5 is out of this build: its runtime branches made ptxas inject
# warpgroup.arrive waits, C7519, which this build has none of.)
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 240 $w/persistent_lab --mma-depth --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "lab rc $?"
cat $OUT/persistent_lab.txt
