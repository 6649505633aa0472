#!/usr/bin/env bash
# Session 10, call 6 (bundle of 17eaa32): why the runner's decode step takes ~8-14 us longer than the check
# program's loop on the same card. The runner's fp16 batch-1 decode cell with its NVML sampler at 0.1 s (default)
# and at 60 s (effectively off), alternating, 2 rounds; the check program's decode loop beside them.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
export GPTBENCH_ORT_LIBRARY="$gb/lib/libonnxruntime.so.1" GPTBENCH_SHARED_DIR="$gb/shared"
bin="$gb/gptbench"
printf '#!/bin/sh\nLD_LIBRARY_PATH="%s/lib:${LD_LIBRARY_PATH:-}" exec "%s/bin/gptbench" "$@"\n' "$gb" "$gb" > "$bin"; chmod +x "$bin"
"$bin" init-random --shape gpt2 --out artifacts/gpt2-random > /dev/null
runs=/tmp/sampler-ab; mkdir -p $runs
for r in 1 2; do for s in 0.1 60; do
  timeout 120 "$bin" run --config configs/matrix.yaml --out $runs/s$s-$r --set "backends=[{name: native, device: cuda, precisions: [fp16]}]" \
    --set "gpu_sample_seconds=$s" \
    --set 'scenarios=[{kind: prefill, batch: 1, seq: 128}, {kind: decode, batch: 1, prompt: 128, new_tokens: 128}]' \
    > $runs/s$s-$r.log 2>&1; echo "sampler $s round $r: rc $?"
  python3 - $runs/s$s-$r <<'PY'
import glob, json, statistics, sys
for f in glob.glob(sys.argv[1] + "/raw/bench_*.jsonl"):
    for line in open(f):
        r = json.loads(line)
        if "step_ms" in r:
            s = sorted(r["step_ms"])
            print(f"  decode rep {r['repetition']}: step median {statistics.median(s):.4f} min {s[0]:.4f} ms, {r['tokens_per_s']:.0f} tokens/s, ttft {r['ttft_ms']:.3f}")
        elif "call_ms" in r:
            print(f"  prefill rep {r['repetition']}: median {statistics.median(r['call_ms']):.4f} ms")
PY
done; done
timeout 60 $w/bin/gptbench_cuda_check bench --model artifacts/gpt2-random --precision fp16 --shapes 1x128 --iters 30 --warmup 5 2>/dev/null | python3 -c "
import json,sys
for l in sys.stdin:
    r=json.loads(l); print(' check', r['check'], r.get('batch'), r.get('gpu_ms_median'), r.get('wall_ms_median'), r.get('new_tokens_per_s_per_sequence_median'), r.get('step_gpu_ms_median'))"
tar -C /tmp -czf $OUT/sampler-ab.tar.gz sampler-ab
