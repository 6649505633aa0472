#!/usr/bin/env bash
# Session 19, call 4: call 3 again with the data carried (pack_cuda_carry.sh had left the tiny model and the
# WikiText-2 text out because a gptbench bundle lay in .device-carry/gptbench, though this call does not carry it;
# fixed) and BadInputsAreErrors' new line corrected: scripts/gpu/check_cuda_engine.sh without labs, anchors and int8,
# then scripts/gpu/prefill_variants.sh, 6 alternating rounds of 100 calls: default (no memset node before the
# persistent kernels, ids read from mapped host memory: two graph nodes fewer) against sync_memset=1,mapped_inputs=0
# (both nodes back, the eighteenth session's graphs); fp16 B1 x S128, B1 x S64 and decode batch 1 / 8.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work
OUT=$OUT WORK=$w SKIP_LABS=1 SKIP_ANCHORS=1 SKIP_INT8=1 timeout 300 scripts/gpu/check_cuda_engine.sh > $OUT/check.out 2> $OUT/check.log
echo "check rc $?"
grep -E "^\[  (PASSED|FAILED) |^\[  FAILED|Failure" $OUT/check.out | head -20
grep '"FAILED"' $OUT/results.jsonl | cut -c1-200
OUT=$OUT WORK=$w VARIANTS="default sync_memset=1,mapped_inputs=0" SHAPES=1x128,1x64 ROUNDS=6 ITERS=100 \
  timeout 300 scripts/gpu/prefill_variants.sh 2> $OUT/variants.log; echo "variants rc $?"
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
    print(f"{what:22s} {v:34s} median {statistics.median(t):9.4f}  rounds {' '.join(f'{x:.4f}' for x in t)}")
PY
sed -n 1,40p $OUT/summary.md
