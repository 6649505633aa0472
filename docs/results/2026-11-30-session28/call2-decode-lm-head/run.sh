#!/usr/bin/env bash
# Session 28, call 2 (H200): decode steps of 5-8 sequences after call 1's split kernel instances. New engine
# option gemv_lm_head_max_rows (default 4): steps of more rows take ln_f + the LM head as the LayerNorm kernel +
# cuBLASLt instead of the fused CUDA-core matrix-vector kernel. Per-kernel profiles (graphs off) of a batch-8
# decode, the GPU unit tests, then decode at batch 1 and 8 in alternating rounds (fp16, bf16, fp32):
#   default            (fp16 / bf16: batch 8 through cuBLASLt; fp32: the persistent step)
#   gemv_max_rows=8    (fp16 / bf16: the persistent CUDA-core step at 8 rows, now with the cuBLASLt LM head)
#   gemv_max_rows=8,gemv_lm_head_max_rows=8   (the same with the fused LM head: the behaviour before this call)
#   decode_mma=1       (the tensor-core instance, with the cuBLASLt LM head)
# Carried: .device-carry/cuda (LABS=decode_persistent_lab, libraries and data packed).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
w=/tmp/cuda-engine-work
o=$OUT/work
mkdir -p "$o" "$w"
rm -rf "$w/bin" "$w/lib" && tar -C "$w" -xJf .device-carry/cuda/bins.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu.txt"
[[ -f $w/gpt2-random/config.json ]] ||
  timeout 120 python3 scripts/gpu/reference.py prepare --work "$w" --carry .device-carry/cuda --json "$o/prepare.jsonl"
lib_wrapper "$w/check" "$w/lib" "$w/bin/gptbench_cuda_check"
lib_wrapper "$w/tests" "$w/lib" "$w/bin/cuda_engine_test"
echo "+ [$(date +%T)] tests" >&2
timeout 150 "$w/tests" --gtest_brief=0 > "$o/tests.txt" 2>&1
echo "rc $?" >> "$o/tests.txt"
prof() {  # prof PRECISION NAME OPTIONS
  echo "+ [$(date +%T)] profile $1 $2" >&2
  timeout 90 "$w/check" profile --model "$w/gpt2-random" --precision "$1" --shapes none --decode-batch 8 --opt "$3" \
    > /dev/null 2> "$o/profile-$1-$2.txt"
  echo "rc $?" >> "$o/profile-$1-$2.txt"
}
prof fp16 default default
prof fp16 persistent8 gemv_max_rows=8
prof fp16 persistent8-gemv-head gemv_max_rows=8,gemv_lm_head_max_rows=8
prof fp16 mma decode_mma=1
prof fp32 default default
prof fp32 gemv-head gemv_lm_head_max_rows=8
for p in fp16 bf16; do
  OUT=$o/ab-$p WORK=$w PRECISION=$p SHAPES=none ROUNDS=2 \
    VARIANTS="default gemv_max_rows=8 gemv_max_rows=8,gemv_lm_head_max_rows=8 decode_mma=1" \
    timeout 150 scripts/gpu/prefill_variants.sh > "$o/ab-$p.txt" 2> "$o/ab-$p.log"
done
OUT=$o/ab-fp32 WORK=$w PRECISION=fp32 SHAPES=none ROUNDS=2 VARIANTS="default gemv_lm_head_max_rows=8" \
  timeout 100 scripts/gpu/prefill_variants.sh > "$o/ab-fp32.txt" 2> "$o/ab-fp32.log"
cp "$o"/*.txt "$OUT/" 2>/dev/null
tar -C "$o" -czf "$OUT/call2.tar.gz" .
grep -E "^\[ +(FAILED|SKIPPED|PASSED) +\]|^rc " "$o/tests.txt" | tail -8
for f in "$o"/profile-*.txt; do echo "== $f"; grep -A12 "^profile (" "$f" | tail -12; done
cat "$o"/ab-*.txt
