#!/usr/bin/env bash
# Session 18, call 6: LN2 folded into FC (GPTBENCH_FOLD_LN2=1, lab only): the attention projection unsplit (24 tiles
# of 128 x 32, k 768), each tile finishing x = x + b_proj + att . Wproj^T for its columns and writing h = ln2_g * x
# (16-bit) and its rows' mean and M2 over 32 columns; no LN2 row phase and one grid barrier a layer fewer; FC merges
# the 24 tile statistics of each row (two threads a row, Chan's formula, fixed order) while its first stage loads
# and applies rstd * (acc - mean * s) + c in its epilogue (s, c: the column sums of ln2_g * W_fc and of
# ln2_b * W_fc + b_fc). Against HEAD's kernel (base). persistent_lab in full for each (CPU reference checks,
# timing, traces), then --weights-order's forward times alternating, 2 rounds.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
for v in base fold; do
  timeout 100 $w/persistent_lab.$v --json $OUT/labs-$v.jsonl > $OUT/persistent_lab-$v.txt 2>&1; echo "$v lab rc $?"
  grep -E 'rel-norm|ALL CHECKS|FAILED \(' $OUT/persistent_lab-$v.txt | head -24
  grep -E 'phases, us a layer|^proj |^FC ' $OUT/persistent_lab-$v.txt | head -6
done
for r in 1 2; do
  for v in base fold; do
    echo "== $v round $r" >> $OUT/ab.txt
    timeout 60 $w/persistent_lab.$v --weights-order >> $OUT/ab.txt 2>&1
  done
done
grep -E '==|after all stages' $OUT/ab.txt
