#!/usr/bin/env bash
# Session 10, call 8 (same code and machine as call 7): 5 more alternating rounds of the LayerNorm with 2 rows a
# warp against the one-row kernel.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
: # (unit tests: call 7)

OUT=$OUT WORK=$w SHAPES="8x512,32x128,8x128,1x1024" ROUNDS=5 \
  VARIANTS="default layernorm_rows=2" \
  timeout 400 scripts/gpu/prefill_variants.sh 2> $OUT/variants.log > /dev/null
python3 - $OUT/variants.jsonl <<'PY' | tee $OUT/variants-median.txt
import collections, json, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("check") == "prefill_speed":
        rows[(r["variant"], f'B{r["batch"]}xS{r["seq"]}')].append(r["gpu_ms_median"])
for (variant, shape), ms in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    print(f"{shape:10s} {variant:20s} median {statistics.median(ms):.4f} ms  rounds {' '.join(f'{m:.4f}' for m in ms)}")
PY
gzip -f $OUT/variants.log
