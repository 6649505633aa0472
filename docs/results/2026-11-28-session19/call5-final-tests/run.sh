#!/usr/bin/env bash
# Session 19, call 5: the final code (mapped_inputs now only for the persistent kernels, which read the ids once at
# their start; the cuBLASLt paths keep their copies). The GPU unit tests, decode_persistent_lab (its counter buffer
# now holds the exit count: checks and timing), then scripts/gpu/prefill_variants.sh, 4 alternating rounds of 100
# calls: default against sync_memset=1,mapped_inputs=0; fp16 B1 x S128 and decode batch 1 / 8.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
LD_LIBRARY_PATH=$w/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED) |^\[  FAILED|Failure" $OUT/unit_tests.txt | head -12
LD_LIBRARY_PATH=$w/lib:$LD_LIBRARY_PATH timeout 120 $w/bin/decode_persistent_lab > $OUT/decode_persistent_lab.txt 2>&1
echo "decode_persistent_lab rc $?"; grep -E 'ALL CHECKS|FAILED' $OUT/decode_persistent_lab.txt | tail -2
OUT=$OUT WORK=$w VARIANTS="default sync_memset=1,mapped_inputs=0" SHAPES=1x128 ROUNDS=4 ITERS=100 \
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
