#!/usr/bin/env bash
# Session 17, call 5: after call 4 (the k loops do not follow the MMAs' shared-memory bytes: half the MMAs saved only
# 0.3 us of QKV's 1.9, and m64n64 on one warpgroup was slower) — is it the chain of MMAs on one accumulator (48
# dependent m64n32k16 a QKV / FC item, ~69 ns each)? persistent_lab --chains: the k16 steps round-robin over 2 or 4
# independent accumulators, added after the k loop: checks (fp16, bf16, every kernel variant), 3 alternating rounds
# of the 12-layer forward at B1 x S128 and S64 with 1 / 2 / 4 chains, traces.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 200 $w/persistent_lab --chains --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "lab rc $?"
cat $OUT/persistent_lab.txt
