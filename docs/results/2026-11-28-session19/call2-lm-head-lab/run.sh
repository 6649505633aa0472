#!/usr/bin/env bash
# Session 19, call 2: the persistent kernel's LM head phase in lab/cuda/persistent_lab.cu --lm-head (the check
# against the stored logits and a double-precision product, then the forward with and without the phase and its
# traced times), three builds of one tree (scripts/gpu/pack_lab_variants.sh build base allrows=-DGPTBENCH_LM_ALL_ROWS=1
# noearly=-DGPTBENCH_LM_NO_EARLY=1): base = each block keeps half the rows and streams 64-column tiles through two
# rings of 8 boxes, the first boxes requested during ln_f; allrows = all rows resident, one ring of 4 boxes (each
# tile read once); noearly = base without the weights requested before ln_f's barrier. Each variant's full run, then
# 3 rounds of the timing alone, the variants alternating.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=$(mktemp -d); tar -C $w -xJf .device-carry/lab/lab.tar.xz
for v in base allrows noearly; do
  timeout 150 $w/persistent_lab.$v --lm-head --json $OUT/labs-$v.jsonl > $OUT/full-$v.txt 2>&1
  echo "== $v full run rc $?"; grep -E 'B[0-9]+ x S|ALL CHECKS|FAILED' $OUT/full-$v.txt
done
for r in 1 2 3; do
  for v in base allrows noearly; do
    echo "== $v round $r" >> $OUT/ab.txt
    timeout 60 $w/persistent_lab.$v --lm-head-timing >> $OUT/ab.txt 2>&1
  done
done
grep -E '^==|forward without' $OUT/ab.txt
