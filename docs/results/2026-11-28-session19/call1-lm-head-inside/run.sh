#!/usr/bin/env bash
# Session 19, call 1: the LM head and its summary as the persistent prefill kernel's last phases (engine option
# persistent_lm_head, on). Binaries of the working tree after fc7c624 (check program + GPU unit tests, WITH_BUNDLE=1),
# libraries and data from the gptbench bundle. scripts/gpu/check_cuda_engine.sh without labs, anchors and int8 (the
# GPU unit tests — PersistentLmHeadAgreesWithCublasLt among them —, logits against transformers on the GPT-2 124M
# shape, perplexity, speed), then scripts/gpu/prefill_variants.sh: default against persistent_lm_head=0 (cuBLASLt's
# LM head and row_summary after the kernel), fp16, B1 x S128 and B1 x S64, 4 alternating rounds.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work
OUT=$OUT WORK=$w SKIP_LABS=1 SKIP_ANCHORS=1 SKIP_INT8=1 timeout 300 scripts/gpu/check_cuda_engine.sh 2> $OUT/check.log
echo "check rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure|PersistentLm" $OUT/check.log | head -16
OUT=$OUT WORK=$w VARIANTS="default persistent_lm_head=0" SHAPES=1x128,1x64 ROUNDS=4 ITERS=50 timeout 240 \
  scripts/gpu/prefill_variants.sh 2> $OUT/variants.log; echo "variants rc $?"
python3 - $OUT/variants.jsonl <<'PY'
import collections, json, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("check") == "prefill_speed":
        rows[(r["variant"], r.get("batch"), r.get("seq"))].append(r.get("gpu_ms_median"))
for k, t in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
    print(f"prefill {k[1]}x{k[2]} {k[0]:22s} median {statistics.median(t):.4f} ms  rounds {' '.join(f'{x:.4f}' for x in t)}")
PY
