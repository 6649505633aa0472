#!/usr/bin/env bash
# Second-pass measurements of the CUDA engine on the GPU machine (after check_cuda_engine.sh): the re-checks
# after a change (GPU unit tests, logits in every precision, tiny-model perplexity), the speed table, engine
# variants (skinny_kernels=0, gemm_autotune=0), the full WikiText-2 pass on the 124M shape, a per-kernel profile
# (graphs off), and the transformers anchors again when the card is not the H200 of the first pass.
# Results: $OUT/results.jsonl, $OUT/profile.txt, $OUT/summary.md.
set -uo pipefail
carry=${CARRY:-.device-carry/cuda}
out=${OUT:-/tmp/cuda-engine-out}
work=${WORK:-/tmp/cuda-engine-work}
mkdir -p "$out" "$work"
results=$out/results.jsonl
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -d $d ]] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}
done
bin=$carry/bin/gptbench_cuda_check
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"
run() {
  local limit=$1; shift
  echo "+ [$(date +%T)] $*" >&2
  timeout "$limit" "$@"
  local rc=$?
  [[ $rc -ne 0 ]] && echo "{\"check\": \"FAILED\", \"rc\": $rc, \"command\": \"$*\"}" | tee -a "$results"
  return 0
}
if grep -q H200 "$out/gpu.txt"; then tf=799; bw=4.26; else tf=780; bw=3.0; fi
m124=$work/gpt2-random
[[ -f $m124/model.safetensors ]] || run 120 python3 scripts/gpu/reference.py prepare --work "$work" --carry "$carry" --json "$results"
run 60 "$carry/bin/cuda_engine_test" 2>&1 | tail -4
for p in fp32 fp16 bf16 tf32; do
  run 30 "$bin" logits --model "$m124" --precision $p --ids "$work/ids.bin" --batch 2 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
done
for p in fp32 fp16 bf16; do
  run 30 "$bin" ppl --model "$carry/gpt2-tiny-wt2" --precision $p --tokens "$work/wt2_test.bin" --expect 581.1065448201081 --json "$results"
done
run 90 "$bin" bench --model "$m124" --precision fp16 --iters 30 --warmup 5 --peak-tflops $tf --peak-tbps $bw --json "$results"
run 40 "$bin" bench --model "$m124" --precision fp16 --iters 20 --warmup 3 --shapes 1x128 --opt skinny_kernels=0 --json "$results"
run 40 "$bin" bench --model "$m124" --precision fp16 --iters 20 --warmup 3 --shapes 1x128,8x512 --opt gemm_autotune=0 --json "$results"
run 40 "$bin" ppl --model "$m124" --precision fp16 --tokens "$work/wt2_test.bin" --json "$results"
run 60 "$bin" profile --model "$m124" --precision fp16 --shapes 1x128,8x512 2> "$out/profile.txt"
grep -v "^\[" "$out/profile.txt"
run 60 "$bin" bench --model "$m124" --precision bf16 --iters 10 --warmup 3 --json "$results"
grep -q H200 "$out/gpu.txt" || run 150 python3 scripts/gpu/reference.py anchors --work "$work" --iters 20 --warmup 5 --json "$results"
python3 scripts/gpu/summarize.py "$results" > "$out/summary.md" && cat "$out/summary.md"
