#!/usr/bin/env bash
# Session 9, call 7: GPU unit tests of the final code; the runner's decode cells with decode_reuse on / off
# (alternating, 2 rounds each, fp16, GPT-2 124M shape).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests_full.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED|Failure|Expected|Which is|actual" $OUT/unit_tests_full.txt | head -20
export GPTBENCH_ORT_LIBRARY="$gb/lib/libonnxruntime.so.1" GPTBENCH_SHARED_DIR="$gb/shared"
bin="$gb/gptbench"
printf '#!/bin/sh\nLD_LIBRARY_PATH="%s/lib:${LD_LIBRARY_PATH:-}" exec "%s/bin/gptbench" "$@"\n' "$gb" "$gb" > "$bin"; chmod +x "$bin"
"$bin" init-random --shape gpt2 --out artifacts/gpt2-random > /dev/null
runs=/tmp/decode-ab; mkdir -p $runs
for r in 1 2; do for v in reuse noreuse; do
  opt=""; [[ $v == noreuse ]] && opt=', options: {decode_reuse: "0"}'
  timeout 120 "$bin" run --config configs/matrix.yaml --out $runs/$v-$r --set "backends=[{name: native, device: cuda, precisions: [fp16]$opt}]" \
    --set 'scenarios=[{kind: prefill, batch: 1, seq: 128}, {kind: decode, batch: 1, prompt: 128, new_tokens: 128, min_calls: 1, warmup_calls: 1}, {kind: decode, batch: 8, prompt: 128, new_tokens: 128, min_calls: 1, warmup_calls: 1}]' \
    > $runs/$v-$r.log 2>&1; echo "$v round $r: rc $?"
  grep -E "VALID|INVALID" $runs/$v-$r.log | tail -1
  awk -F, 'NR==1{for(i=1;i<=NF;i++)h[$i]=i; next} {print "  " $h["scenario"] " median_ms " $h["median_ms"] " tokens_per_s " $h["tokens_per_s"] " ttft_ms " $h["ttft_ms"]}' $runs/$v-$r/processed/latency_summary.csv
done; done
tar -C /tmp -czf $OUT/decode-ab.tar.gz decode-ab
