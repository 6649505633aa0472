#!/usr/bin/env bash
# Session 26, call 7: call 6 reproduced the hang — v4 (lm_head_summary<half, 192, 5, STORE>) hangs in the lab built
# with lm_head_regs.patch, even as the first kernel launched, and not in the lab with only the patch's extra
# LmHeadArgs field. Here: cuobjdump's resource usage of every kernel in both (unstripped) labs, and v4's SASS in
# both, to diff here.
# Carried: .device-carry/lab (the two unstripped labs).
set -u
o=$OUT/work
mkdir -p "$o" /tmp/lab
tar -C /tmp/lab -xJf .device-carry/lab/lab.tar.xz
dump=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
f='_ZN8gptbench11cuda_engine7kernels15lm_head_summaryI6__halfLi192ELi5ELb1ELb0EEEv14CUtensorMap_stS4_NS1_10LmHeadArgsIT_EE'
for b in field regs; do
  "$dump" -res-usage /tmp/lab/bin/lm_head_lab_$b > "$o/res-$b.txt" 2>&1
  "$dump" -sass -fun "$f" /tmp/lab/bin/lm_head_lab_$b > "$o/v4-sass-$b.txt" 2>&1
  "$dump" -elf /tmp/lab/bin/lm_head_lab_$b 2>/dev/null | grep -A3 -i "lm_head_summaryI6__halfLi192ELi5ELb1ELb0" | head -40 > "$o/v4-elf-$b.txt"
done
cp "$o"/*.txt "$OUT/"
wc -l "$o"/*.txt
grep -A1 "lm_head_summaryI6__halfLi192ELi5ELb1ELb0" "$o/res-field.txt" "$o/res-regs.txt" | head
diff <(sed 's@/\*[0-9a-f]*\*/@@' "$o/v4-sass-field.txt") <(sed 's@/\*[0-9a-f]*\*/@@' "$o/v4-sass-regs.txt") | head -40
