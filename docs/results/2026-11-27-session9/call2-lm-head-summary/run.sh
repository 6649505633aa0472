#!/usr/bin/env bash
# Session 9, call 2: the LM head with the summary in its epilogue — lab (checks + timing against cuBLASLt +
# row_summary), GPU unit tests, engine A/B (default = fused for <= 128 rows; 0 = off; 4096 = every shape).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w
tar -C $w -xJf .device-carry/cuda/bins.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
echo "== lab"; timeout 200 $w/bin/lm_head_lab --json $OUT/labs.jsonl > $OUT/lm_head_lab.txt 2>&1; echo "lab rc $?"; cat $OUT/lm_head_lab.txt
gb=/tmp/gptbench-bundle; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests_full.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED|Failure|Expected|Which is|actual|row |sequence " $OUT/unit_tests_full.txt | head -30
OUT=$OUT VARIANTS="default lm_head_summary_rows=0 lm_head_summary_rows=4096" SHAPES=1x128,1x64,8x128,1x1024,8x512 ROUNDS=3 timeout 320 scripts/gpu/prefill_variants.sh 2>&1 | grep "median"
python3 - $OUT/variants.jsonl <<'PY'
import collections, json, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("check") == "decode_speed": rows[(r["variant"], r.get("batch"))].append(r.get("new_tokens_per_s") or r.get("tokens_per_s") or 0)
for k, v in sorted(rows.items()): print("decode", k, [round(x) for x in v])
PY
