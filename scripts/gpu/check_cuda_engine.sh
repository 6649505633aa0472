#!/usr/bin/env bash
# Checks and times the native CUDA engine on the GPU machine in one go (issue 7):
#   1. PyTorch side: a random GPT-2 124M checkpoint (transformers, fixed seed), fp32 reference logits,
#      WikiText-2 test ids (GPT-2 byte-level BPE from the tokenizers library on the carried vocab/merges).
#   2. The GPU unit tests (small random models against a double-precision host forward).
#   3. Engine logits against the reference in fp32 / tf32 / fp16 / bf16 (+ decode, graphs, device NLL checks).
#   4. gpt2-tiny-wt2 perplexity (ctx 1024 / stride 512) in each precision against 581.107.
#   5. Speed: prefill scenarios, decode, the full WikiText-2 perplexity pass on the 124M shape.
#   6. The transformers anchors (SDPA / eager, fp16 / fp32) and the card's ceilings, on the same card.
# Every command has its own time limit, so one stuck step cannot eat the device budget.
# Results: $OUT/results.jsonl (one JSON object per check), $OUT/summary.md; progress on stderr.
# Run on the GPU machine from the repository root after scripts/gpu/pack_cuda_carry.sh packed .device-carry/cuda.
set -uo pipefail
carry=${CARRY:-.device-carry/cuda}
out=${OUT:-/tmp/cuda-engine-out}
work=${WORK:-/tmp/cuda-engine-work}
iters=${ITERS:-30}
mkdir -p "$out" "$work"
results=$out/results.jsonl
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -d $d ]] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}
done
bin=$carry/bin/gptbench_cuda_check
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$out/gpu.txt"
run() {  # run LIMIT_SECONDS command...
  local limit=$1; shift
  echo "+ [$(date +%T)] $*" >&2
  timeout "$limit" "$@"
  local rc=$?
  [[ $rc -ne 0 ]] && echo "{\"check\": \"FAILED\", \"rc\": $rc, \"command\": \"$*\"}" | tee -a "$results"
  return 0
}
if grep -q H200 "$out/gpu.txt"; then tf=${PEAK_TFLOPS:-799}; bw=${PEAK_TBPS:-4.26}; else tf=${PEAK_TFLOPS:-780}; bw=${PEAK_TBPS:-3.0}; fi
m124=$work/gpt2-random
tiny=$carry/gpt2-tiny-wt2
ppl_ref=581.1065448201081

run 120 python3 scripts/gpu/reference.py prepare --work "$work" --carry "$carry" --json "$results"
[[ -x $carry/bin/cuda_engine_test ]] && run 60 "$carry/bin/cuda_engine_test" --gtest_brief=0
run 40 "$bin" logits --model "$m124" --precision fp32 --ids "$work/ids.bin" --batch 2 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
run 40 "$bin" logits --model "$m124" --precision fp16 --ids "$work/ids.bin" --batch 2 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
run 30 "$bin" ppl --model "$tiny" --precision fp32 --tokens "$work/wt2_test.bin" --expect $ppl_ref --json "$results"
run 30 "$bin" ppl --model "$tiny" --precision fp16 --tokens "$work/wt2_test.bin" --expect $ppl_ref --json "$results"
run 90 "$bin" bench --model "$m124" --precision fp16 --iters $iters --warmup 5 --peak-tflops $tf --peak-tbps $bw --json "$results"
run 40 "$bin" ppl --model "$m124" --precision fp16 --tokens "$work/wt2_test.bin" --json "$results"
run 40 "$bin" logits --model "$m124" --precision bf16 --ids "$work/ids.bin" --batch 2 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
run 40 "$bin" logits --model "$m124" --precision tf32 --ids "$work/ids.bin" --batch 2 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
run 30 "$bin" ppl --model "$tiny" --precision bf16 --tokens "$work/wt2_test.bin" --expect $ppl_ref --json "$results"
run 30 "$bin" ppl --model "$tiny" --precision tf32 --tokens "$work/wt2_test.bin" --expect $ppl_ref --json "$results"
[[ -n ${FULL:-} ]] && run 120 "$bin" bench --model "$m124" --precision bf16 --iters $iters --warmup 5 --json "$results"
[[ -n ${FULL:-} ]] && run 120 "$bin" bench --model "$m124" --precision fp32 --iters 10 --warmup 2 --json "$results"
run 150 python3 scripts/gpu/reference.py anchors --work "$work" --iters ${ANCHOR_ITERS:-20} --warmup 5 --json "$results"
python3 scripts/gpu/summarize.py "$results" > "$out/summary.md" && cat "$out/summary.md"
