#!/usr/bin/env bash
# Session 17, call 11: call 10's miniature of the kernel's product loop took an item's 12 boxes and their MMAs in
# ~3,050 cycles with stages of two boxes (32 KB, one request) against ~4,430 with one. The kernel with ring stages
# of two boxes (kPersistentBoxesPerStage = 2: 4 stages of 32 KB, 3 in the paired kernel; the attention projection in
# 3 k splits so that each split is whole stages): persistent_lab's full run (checks of every variant against the CPU
# reference, timings, traces), then the A/B against the kernel before it (persistent_lab.base, HEAD's build):
# --weights-order's forward times (its second row is the kernel's default order), alternating, 3 times each.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 200 $w/persistent_lab --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "lab rc $?"
for r in 1 2 3; do
  for v in persistent_lab.base persistent_lab; do
    echo "== $v round $r" >> $OUT/ab.txt
    timeout 60 $w/$v --weights-order >> $OUT/ab.txt 2>&1
  done
done
grep -E 'forward|PASSED|FAILED|k loop|QKV    median|FC     median' $OUT/persistent_lab.txt | head -40
grep -E '==|after all stages' $OUT/ab.txt
