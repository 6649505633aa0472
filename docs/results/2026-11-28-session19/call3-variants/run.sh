#!/usr/bin/env bash
# Session 19, call 3: the engine check on this session's code (binaries of the working tree after fc7c624, packed with
# their libraries and data by scripts/gpu/pack_cuda_carry.sh, no gptbench bundle: int8 left out, its path unchanged):
# scripts/gpu/check_cuda_engine.sh without labs and anchors (GPU unit tests, logits against transformers, perplexity,
# speed), persistent_lab --lm-head (the LM head phase with the final rule: weights early only with one row half),
# then scripts/gpu/prefill_variants.sh, 3 alternating rounds: default (no memset node, ids read from mapped host
# memory) against sync_memset=1, mapped_inputs=0 and persistent_lm_head=1; fp16 B1 x S128, B1 x S64, B8 x S512 and
# decode batch 1 / 8.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work
OUT=$OUT WORK=$w SKIP_LABS=1 SKIP_ANCHORS=1 SKIP_INT8=1 timeout 300 scripts/gpu/check_cuda_engine.sh > $OUT/check.out 2> $OUT/check.log
echo "check rc $?"
grep -E "^\[  (PASSED|FAILED) |^\[  FAILED|Failure" $OUT/check.out | head -20
grep -c '"FAILED"' $OUT/results.jsonl
timeout 120 $w/bin/persistent_lab --lm-head > $OUT/persistent_lab-lm-head.txt 2>&1; echo "lab rc $?"
grep -E 'forward without|ALL CHECKS|FAILED' $OUT/persistent_lab-lm-head.txt
OUT=$OUT WORK=$w VARIANTS="default sync_memset=1 mapped_inputs=0 persistent_lm_head=1" SHAPES=1x128,1x64,8x512 ROUNDS=3 ITERS=50 \
  timeout 360 scripts/gpu/prefill_variants.sh 2> $OUT/variants.log; echo "variants rc $?"
python3 - $OUT/variants.jsonl <<'PY'
import collections, json, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("check") == "prefill_speed":
        rows[(f'prefill B{r["batch"]}xS{r["seq"]} ms', r["variant"])].append(r["gpu_ms_median"])
    elif r.get("check") == "decode_speed":
        rows[(f'decode B{r["batch"]} tok/s', r["variant"])].append(r["new_tokens_per_s_per_sequence_median"])
for (what, v), t in sorted(rows.items()):
    print(f"{what:22s} {v:24s} median {statistics.median(t):9.4f}  rounds {' '.join(f'{x:.4f}' for x in t)}")
PY
tail -25 $OUT/summary.md
