#!/usr/bin/env bash
# Session 26, call 6: what made v4 (lm_head_summary<192, 5> storing the logits, an engine kernel) hang in calls 1-2?
# Two labs built from HEAD (04af6c2): (a) lm_head_lab_field — HEAD plus only the experiment's extra LmHeadArgs
# field (const T* h); (b) lm_head_lab_regs — HEAD plus the whole lm_head_regs.patch (call 3's tree). Each at 128
# rows, fp16, with a 40 s limit: (a) all versions; (b) v0 then v4 as in call 2, then v4 alone.
# Carried: .device-carry/lab (the two stripped labs).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
o=$OUT/work
mkdir -p "$o" /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
timeout 40 /tmp/lab/bin/lm_head_lab_field --only 128 > "$o/field.txt" 2>&1; echo "rc $?" >> "$o/field.txt"
timeout 40 /tmp/lab/bin/lm_head_lab_regs --only 128 --versions 0,4 > "$o/regs-0-4.txt" 2>&1; echo "rc $?" >> "$o/regs-0-4.txt"
timeout 40 /tmp/lab/bin/lm_head_lab_regs --only 128 --versions 4 > "$o/regs-4.txt" 2>&1; echo "rc $?" >> "$o/regs-4.txt"
cp "$o"/*.txt "$OUT/"
for f in field regs-0-4 regs-4; do echo "== $f"; grep -E "v4 |v0 |rc |ALL|FAIL|^\(" "$o/$f.txt" | head -12; done
