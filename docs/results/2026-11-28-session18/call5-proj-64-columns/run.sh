#!/usr/bin/env bash
# Session 18, call 5: the persistent kernel's attention projection as 64-column tiles in 6 k splits of 128
# (GPTBENCH_PROJ_BN=64: 12 tiles x 6 splits, one ring stage an item, m64n64 MMAs, which the wgmma chain lab put at
# 95 % of the tensor cores against 62 % for n32; LN2 then sums 6 partials instead of 3) against HEAD's 32-column
# tiles in 3 splits of 256 (proj32 = HEAD's kernel). persistent_lab in full for each (CPU reference checks, timing,
# traces), then --weights-order's forward times alternating, 2 rounds.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
for v in proj32 proj64; do
  timeout 100 $w/persistent_lab.$v --json $OUT/labs-$v.jsonl > $OUT/persistent_lab-$v.txt 2>&1; echo "$v lab rc $?"
  grep -E 'FAIL|ALL CHECKS' $OUT/persistent_lab-$v.txt | head -3
  grep -E 'phases, us a layer|^proj ' $OUT/persistent_lab-$v.txt | head -4
done
for r in 1 2; do
  for v in proj32 proj64; do
    echo "== $v round $r" >> $OUT/ab.txt
    timeout 60 $w/persistent_lab.$v --weights-order >> $OUT/ab.txt 2>&1
  done
done
grep -E '==|after all stages' $OUT/ab.txt
