#!/usr/bin/env bash
# Session 24, call 4 (H200): decode_persistent_lab in three builds of one tree (scripts/gpu/pack_lab_variants.sh):
#   base     as committed;
#   alt      -DGPTBENCH_GEMV_HALVES_ALTERNATE=1: in the matrix-vector products' shared-memory reads of input rows,
#            lanes 4-7 of every 8 load the second float4 of their 8 inputs first (16-bit weights), so that a quarter
#            warp's 128-bit loads hit every bank once instead of twice (the chain and the persistent step alike);
#   altwide  alt + -DGPTBENCH_DECODE_WIDE_PROJ=1: at 8 rows the attention / MLP projections take 2 columns a warp.
# Each variant's full run (bits against the chain and a double reference; timing and phases), then 3 alternating
# rounds of --timing-only. Carried: .device-carry/lab.
set -u
OUT=$OUT LAB=decode_persistent_lab AB_ARGS="--timing-only --iters 50" ROUNDS=3 FULL_LIMIT=150 AB_LIMIT=60 \
  scripts/gpu/lab_ab.sh base alt altwide > $OUT/lab_ab.out 2>&1
echo "rc $?"
grep -E "^== " $OUT/lab_ab.out
grep -E "^== |^time" $OUT/ab.txt
