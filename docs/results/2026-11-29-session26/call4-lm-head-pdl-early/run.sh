#!/usr/bin/env bash
# Session 26, call 4 (engine of this session's tree: option lm_head_pdl_early): the GPU unit tests, then the fp16
# prefill at B1 x S128 and B1 x S64 under three variants, alternating round by round: the default (cuBLASLt's LM
# head and row_summary after the persistent kernel), the ping-pong LM head with the summary in its epilogue at
# these rows (lm_head_summary_min_rows=128: a programmatic dependent of the persistent kernel, launched when that
# kernel completes), and the same launched at the start of the persistent kernel's last layer
# (lm_head_pdl_early=1: its blocks take each SM as the persistent block there leaves, their first weight tiles
# requested before they wait).
# Carried: .device-carry/cuda (WITH_BUNDLE=1: the check program and the unit tests) and .device-carry/gptbench
# (WITH_ORT=0; its lib/ and data serve them).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
w=/tmp/cuda-engine-work
o=$OUT/work
gb=/tmp/gptbench-bundle
mkdir -p "$o" "$w" "$gb"
tar -C "$w" -xJf .device-carry/cuda/bins.tar.xz && tar -C "$gb" -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
lib_wrapper "$w/tests-wrapper" "$(carried_libdir "$w" "$gb")" "$w/bin/cuda_engine_test"
timeout 240 "$w/tests-wrapper" --gtest_brief=0 > "$o/tests.txt" 2>&1
echo "rc $?" >> "$o/tests.txt"
OUT=$o WORK=$w ROUNDS=4 ITERS=100 SHAPES=1x128,1x64 \
  VARIANTS="default lm_head_summary_min_rows=128 lm_head_summary_min_rows=128,lm_head_pdl_early=1" \
  timeout 420 scripts/gpu/prefill_variants.sh > "$o/variants.txt" 2> "$o/variants.log"
echo "rc $?" >> "$o/variants.txt"
cp "$o"/*.txt "$OUT/" 2>/dev/null
grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) +\]|^rc " "$o/tests.txt" | tail -40
cat "$o/variants.txt"; tail -5 "$o/variants.log"
