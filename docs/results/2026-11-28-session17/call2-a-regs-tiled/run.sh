#!/usr/bin/env bash
# Session 17, call 2: as call 1 (the persistent prefill kernel's products with their activations (A) loaded by the consumer
# threads straight from L2 into registers (wgmma with A from registers, fragment-major activations) instead of TMA
# into the shared-memory ring and wgmma reading A from there. persistent_lab --a-regs: checks (CPU reference, the
# ring's bits, reproducibility; fp16 and bf16), 3 alternating rounds of the 12-layer forward at B1 x S128 and S64,
# then both variants' in-phase traces. Call 1's activations kept each row's pieces in place (a warp's load: 8 rows x
# 64 bytes; 438 vs 341 us, the first stage 2-3 us); here they are tiles of 16 rows x 32 columns, a warp's load one
# 512-byte run.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 200 $w/persistent_lab --a-regs --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "lab rc $?"
cat $OUT/persistent_lab.txt
