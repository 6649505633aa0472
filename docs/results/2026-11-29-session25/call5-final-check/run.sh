#!/usr/bin/env bash
# Session 25, call 5 (H200): the engine check of the committed code (decode_mma off, the decode step's rows staged
# by cp.async): check_cuda_engine.sh with the GPU unit tests (no int8, labs or anchors), decode variants
# gemv_max_rows=8 (the CUDA-core step at 5-8 sequences) and decode_mma=1; and, where the machine's CUDA has
# cuobjdump, the SASS of the 8-row fp16 persistent decode kernel (for the next session's look at its weight stream).
# Carried: .device-carry/cuda (WITH_BUNDLE=1: the check program and the unit tests) and .device-carry/gptbench
# (WITH_ORT=0).
set -u
w=/tmp/cuda-engine-work
o=$OUT/work
mkdir -p "$o"
OUT=$o WORK=$w SKIP_LABS=1 SKIP_ANCHORS=1 SKIP_INT8=1 DECODE_VARIANTS="gemv_max_rows=8 decode_mma=1" \
  scripts/gpu/check_cuda_engine.sh > "$o/check.out" 2> "$o/check.log"
dump=$(command -v cuobjdump || ls /usr/local/cuda*/bin/cuobjdump 2>/dev/null | head -1)
if [[ -n $dump && -x $w/bin/cuda_engine_test ]]; then
  "$dump" -sass -fun '_ZN8gptbench11cuda_engine7kernels22gpt2_decode_persistentI6__halfLi8EEEvNS1_10DecodeArgsIT_EE' \
    "$w/bin/cuda_engine_test" 2>&1 | gzip > "$o/sass-decode-half-8.txt.gz"
fi
cp "$o/summary.md" "$OUT/" 2>/dev/null
tar -C "$o" -czf "$OUT/call5.tar.gz" .
grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) +\]" "$o"/*.out "$o"/tests*.txt 2>/dev/null | tail -40
tail -20 "$o/check.log" | grep -v "^ptxas"; head -60 "$o/summary.md"; ls -la "$o"
