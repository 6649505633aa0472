#!/usr/bin/env bash
# Session 28, call 3 (H200): (a) the persistent decode step's kernel instance per product mask, with the MLP
# projection alone on tensor cores (kDecodeMproj; engine option decode_mma=mproj) beside all four (decode_mma=1)
# and none (the default): decode_persistent_lab with checks and timing; (b) the GPU unit tests; (c) decode at batch
# 1 and 8 in alternating rounds, fp16 and bf16: default (since ea8e29a the persistent CUDA-core step at 5-8
# sequences, the LM head through cuBLASLt), decode_mma=mproj, decode_mma=1, gemv_max_rows=4 (the old default:
# batch 8 through cuBLASLt); (d) check_cuda_engine.sh on the final tree (no labs, anchors, int8).
# Carried: .device-carry/cuda (LABS=decode_persistent_lab, libraries and data packed).
set -u
source scripts/gpu/device_env.sh
cuda_library_path
w=/tmp/cuda-engine-work
o=$OUT/work
mkdir -p "$o" "$w"
rm -rf "$w/bin" "$w/lib" && tar -C "$w" -xJf .device-carry/cuda/bins.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,power.limit,clocks.max.sm --format=csv | tee "$o/gpu-smi.txt"
echo "+ [$(date +%T)] lab" >&2
LD_LIBRARY_PATH="$w/lib:${LD_LIBRARY_PATH:-}" timeout 240 stdbuf -oL "$w/bin/decode_persistent_lab" \
  --json "$o/lab.jsonl" > "$o/lab.txt" 2>&1
echo "rc $?" >> "$o/lab.txt"
lib_wrapper "$w/tests" "$w/lib" "$w/bin/cuda_engine_test"
echo "+ [$(date +%T)] tests" >&2
timeout 180 "$w/tests" --gtest_brief=0 > "$o/tests.txt" 2>&1
echo "rc $?" >> "$o/tests.txt"
[[ -f $w/gpt2-random/config.json ]] ||
  timeout 120 python3 scripts/gpu/reference.py prepare --work "$w" --carry .device-carry/cuda --json "$o/prepare.jsonl"
for p in fp16 bf16; do
  OUT=$o/ab-$p WORK=$w PRECISION=$p SHAPES=none ROUNDS=2 \
    VARIANTS="default decode_mma=mproj decode_mma=1 gemv_max_rows=4" \
    timeout 150 scripts/gpu/prefill_variants.sh > "$o/ab-$p.txt" 2> "$o/ab-$p.log"
done
OUT=$o WORK=$w SKIP_LABS=1 SKIP_ANCHORS=1 SKIP_INT8=1 DECODE_VARIANTS="gemv_max_rows=4" \
  timeout 330 scripts/gpu/check_cuda_engine.sh > "$o/check.out" 2> "$o/check.log"
cp "$o"/*.txt "$o/summary.md" "$OUT/" 2>/dev/null
tar -C "$o" -czf "$OUT/call3.tar.gz" .
grep -E "^time|step \(|FAILED|passed|^rc |MLP|  [A-E] " "$o/lab.txt" | grep -v "chain's bits yes" | head -70
grep -E "^\[ +(FAILED|SKIPPED|PASSED) +\]|^rc " "$o/tests.txt" | tail -8
cat "$o"/ab-fp16.txt "$o"/ab-bf16.txt
grep -E "FAILED" "$o"/results.jsonl | head
head -40 "$o/summary.md"
