#!/usr/bin/env bash
# Session 18, call 3: the grid barrier's wait as two relaxed polls in flight (the second issued 200 / 400 SM cycles
# after the first, each reissued as soon as it is read) and one acquire fence after the target is seen
# (GPTBENCH_POLL_PIPELINED=200 / 400), against HEAD's acquire polls (each waits for the one before; Nsight Compute
# in call 1: an L1 invalidation after every poll). persistent_lab in full for each (CPU reference checks, the
# barrier skeleton, traces), then --weights-order's forward times alternating, 2 rounds.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
for v in base poll200 poll400; do
  timeout 100 $w/persistent_lab.$v --json $OUT/labs-$v.jsonl > $OUT/persistent_lab-$v.txt 2>&1; echo "$v lab rc $?"
  grep -E 'FAIL|ALL CHECKS' $OUT/persistent_lab-$v.txt | head -3
  grep -E 'forward \(12' $OUT/persistent_lab-$v.txt | head -4
done
for r in 1 2; do
  for v in base poll200 poll400; do
    echo "== $v round $r" >> $OUT/ab.txt
    timeout 60 $w/persistent_lab.$v --weights-order >> $OUT/ab.txt 2>&1
  done
done
grep -E '==|after all stages' $OUT/ab.txt
