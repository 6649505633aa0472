#!/usr/bin/env bash
# Session 15, call 3: decode_persistent_lab with the phase stamps and the preload switch; the kernel's SASS order.
set -uo pipefail
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
w=/tmp/s15lab; rm -rf $w; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 200 $w/decode_persistent_lab --json $OUT/labs.jsonl > $OUT/decode_persistent_lab.txt 2>&1; echo "lab rc $?"
grep -v "^check" $OUT/decode_persistent_lab.txt; grep -c "ok$" $OUT/decode_persistent_lab.txt
cuobjdump=$(ls /usr/local/cuda/bin/cuobjdump 2>/dev/null || which cuobjdump)
$cuobjdump -sass -fun '_ZN8gptbench11cuda_engine7kernels22gpt2_decode_persistentI6__halfLi1EEEvNS1_10DecodeArgsIT_EE' $w/decode_persistent_lab > $OUT/sass_half1.txt 2>&1
wc -l $OUT/sass_half1.txt
grep -nE "LDG|RED|BAR|LD\.E|SHFL|STG|ATOM" $OUT/sass_half1.txt | awk '{ $1=""; print }' | sed -E 's/\/\*[0-9a-f]+\*\///g' | awk '{print $1, $2}' | uniq -c | head -150
