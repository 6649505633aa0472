#!/usr/bin/env bash
# Session 18, call 8: engine option mapped_outputs (the summary kernels write the top-1 and row sums into mapped
# pinned host memory; a call's graph loses its two device-to-host copy nodes). Binaries of the working tree after
# 3904054 (check program + GPU unit tests, WITH_BUNDLE=1), libraries and data from the gptbench bundle. The GPU unit
# tests (MappedOutputsGiveTheSameSummaries among them), then scripts/gpu/prefill_variants.sh: default against
# mapped_outputs=1, fp16, B1 x S128 and B8 x S512 prefill + batch-1 decode (32 new tokens), 4 alternating rounds.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure|MappedOutputs" $OUT/unit_tests.txt | head -12
OUT=$OUT WORK=$w VARIANTS="default mapped_outputs=1" SHAPES=1x128,8x512 ROUNDS=4 ITERS=50 timeout 330 \
  scripts/gpu/prefill_variants.sh 2> $OUT/variants.log; echo "variants rc $?"
python3 - $OUT/variants.jsonl <<'PY'
import collections, json, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("check") == "decode_speed" and r.get("batch") == 1:
        rows[r["variant"]].append(r["new_tokens_per_s_per_sequence_median"])
for v, t in rows.items():
    print(f"decode B1 {v:20s} median {statistics.median(t):.0f} new tokens/s  rounds {' '.join(f'{x:.0f}' for x in t)}")
PY
