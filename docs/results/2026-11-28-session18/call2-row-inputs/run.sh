#!/usr/bin/env bash
# Session 18, call 2: the row phases' inputs that the phase before did not write (LayerNorm weight / bias, the
# residual product's bias, the block's row of x) loaded between the grid barrier's arrival and its wait
# (load_row_inputs), instead of after it behind the layer table's pointers. persistent_lab in full (every variant
# against the CPU reference, the same bits twice), its trace, then the A/B against HEAD's kernel
# (persistent_lab.base): --weights-order's forward times (the "after all stages" rows are the engine's order),
# alternating, 3 rounds each.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 200 $w/persistent_lab --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "lab rc $?"
grep -E 'FAIL|ALL CHECKS' $OUT/persistent_lab.txt | head -5
grep -E 'phases, us|QKV  |proj  |FC   |mproj ' $OUT/persistent_lab.txt | head -10
for r in 1 2 3; do
  for v in persistent_lab.base persistent_lab; do
    echo "== $v round $r" >> $OUT/ab.txt
    timeout 60 $w/$v --weights-order >> $OUT/ab.txt 2>&1
  done
done
grep -E '==|after all stages' $OUT/ab.txt
