#!/usr/bin/env bash
# Session 11, call 1: (a) GPU unit tests of the new code (decf7e1's LayerNorm mends + the fused residual+LayerNorm
# kernel, its test); (b) residual_layernorm_lab (CPU-reference check, timing against cuBLASLt + layernorm_rows_reg);
# (c) ablation: the default program vs one built with docs/results/.../ablate.patch, whose env GPTBENCH_ABLATE
# skips the many-row LayerNorm kernels and / or the logits summary (wrong results, timing only) — how much of
# B8 x S512 those kernels really cost inside the graph; (d) engine A/B default vs fused_layernorm_rows=1024.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
(command -v nsys; ls /usr/local/cuda/bin | grep -i -E "nsys|ncu") > $OUT/tools.txt 2>&1
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 240 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED|Failure|Expected|Which is|actual|max difference" $OUT/unit_tests.txt | head -30
timeout 120 $w/bin/residual_layernorm_lab --json $OUT/labs.jsonl 2>&1 | tee $OUT/residual_layernorm_lab.txt
echo "lab rc ${PIPESTATUS[0]}"
data=$w/data; mkdir -p $data
ln -sfn $gb/shared/models/gpt2-tiny-wt2 $data/gpt2-tiny-wt2
ln -sfn $gb/shared/data/wikitext-2-raw/wiki.test.raw $data/wiki.test.raw
timeout 120 python3 scripts/gpu/reference.py prepare --work $w --carry $data --json $OUT/prepare.jsonl > /dev/null 2>&1
abl=$w/ablate; mkdir -p $abl; tar -C $abl -xJf .device-carry/ablate/ablate.tar.xz
for round in 1 2 3; do
  for v in none ln summary ln,summary; do
    GPTBENCH_ABLATE=$v timeout 60 $abl/gptbench_cuda_check bench --model $w/gpt2-random --precision fp16 \
      --shapes 8x512,32x128 --iters 30 --warmup 5 --variant "ablate-$v" --decode-new 8 --json $OUT/ablate.jsonl > /dev/null 2>&1 ||
      echo "ablate $v failed"
  done
done
OUT=$OUT WORK=$w SHAPES="8x512,32x128,8x128,1x1024,2x256" ROUNDS=3 VARIANTS="default fused_layernorm_rows=1024" \
  timeout 300 scripts/gpu/prefill_variants.sh 2> $OUT/variants.log > /dev/null
python3 - $OUT/ablate.jsonl $OUT/variants.jsonl <<'PY' | tee $OUT/medians.txt
import collections, json, statistics, sys
for f in sys.argv[1:]:
    rows = collections.defaultdict(list)
    for line in open(f):
        r = json.loads(line)
        if r.get("check") == "prefill_speed":
            rows[(r["variant"], f'B{r["batch"]}xS{r["seq"]}')].append(r["gpu_ms_median"])
    for (variant, shape), ms in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"{shape:10s} {variant:28s} median {statistics.median(ms):.4f} ms  rounds {' '.join(f'{m:.4f}' for m in ms)}")
PY
gzip -f $OUT/variants.log
