#!/usr/bin/env bash
# Checks and times the native CUDA engine on the GPU machine in one go (issue 7):
#   1. PyTorch side: a random GPT-2 124M checkpoint (transformers, fixed seed), fp32 reference logits,
#      WikiText-2 test ids (GPT-2 byte-level BPE from the tokenizers library on the carried vocab/merges).
#   2. The GPU unit tests (small random models against a double-precision host forward).
#   3. Engine logits against the reference in fp32 / tf32 / fp16 / bf16 (+ decode, graphs, device NLL checks).
#   4. gpt2-tiny-wt2 perplexity (ctx 1024 / stride 512) in each precision against 581.107.
#   5. Speed: prefill scenarios, decode, the full WikiText-2 perplexity pass on the 124M shape.
#   6. The transformers anchors (SDPA / eager, fp16 / fp32) and the card's ceilings, on the same card.
#   7. The kernel labs (lab/cuda/*_lab.cu: kernel versions against a CPU reference, timed), when packed.
#   8. INT8 (W8A8): calibration caches made by `gptbench calibrate` (the bundle of bundle_gptbench.sh, when
#      carried) on the WikiText-2 validation text, then logits, perplexity and speed like the other precisions.
# Environment: FULL=1 also times bf16 and fp32; PROFILE=1 adds a per-kernel profile (graphs off) of fp16 (and of int8 with the bundle);
# SKIP_INT8=1 leaves out the int8 calibration and checks; SKIP_LABS=1 leaves out the kernel labs (LABS picks some: "attention_lab gemv_lab gemm_lab cublaslt_lab wgmma_lab persistent_lab decode_persistent_lab"; the default; also wgmma_chain_lab, gemm_large_lab, lm_head_lab, residual_layernorm_lab, layernorm_folded_lab, tma_fill_lab, gemm_pingpong_lab, row_groups_lab); SKIP_ANCHORS=1 leaves out the transformers anchors; COMPILE_ANCHORS=1 adds torch.compile's (B1 x S128, B8 x S512: minutes of compiling); ITERS (default 50, after 10 warm-up calls: the anchors file's protocol) timed calls per shape.
# Every command has its own time limit, so one stuck step cannot eat the device budget.
# Results: $OUT/results.jsonl (one JSON object per check), $OUT/summary.md; progress on stderr.
# Run on the GPU machine from the repository root after scripts/gpu/pack_cuda_carry.sh packed .device-carry/cuda.
set -uo pipefail
carry=${CARRY:-.device-carry/cuda}
out=${OUT:-/tmp/cuda-engine-out}
work=${WORK:-/tmp/cuda-engine-work}
iters=${ITERS:-50}
warmup=${WARMUP:-10}
mkdir -p "$out" "$work"
results=$out/results.jsonl
source "$(dirname "${BASH_SOURCE[0]}")/device_env.sh"
cuda_library_path
tar -C "$work" -xJf "$carry/bins.tar.xz"  # bin/: the check program, the GPU unit tests, the kernel labs
# gptbench itself (calibration caches for int8), from the bundle of scripts/gpu/bundle_gptbench.sh when carried.
gptbench=
if [[ -f .device-carry/gptbench/bundle.tar.xz ]]; then
  gb=/tmp/gptbench-bundle
  rm -rf "$gb" && mkdir -p "$gb" && tar -C "$gb" -xJf .device-carry/gptbench/bundle.tar.xz
  gptbench=$gb/gptbench-wrapper
  lib_wrapper "$gptbench" "$gb/lib" "$gb/bin/gptbench"
fi
binlib=$(carried_libdir "$work" "${gptbench:+$gb}")
bin=$work/bin/gptbench_cuda_check
if [[ -n $binlib ]]; then
  bin=$work/gptbench_cuda_check-wrapper
  lib_wrapper "$bin" "$binlib" "$work/bin/gptbench_cuda_check"
fi
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
# The tiny model and the WikiText-2 test text: from the bundle when carried, else packed beside the binaries.
data=$carry
if [[ -n $gptbench ]]; then
  data=$work/data
  mkdir -p "$data"
  ln -sfn "$gb/shared/models/gpt2-tiny-wt2" "$data/gpt2-tiny-wt2"
  ln -sfn "$gb/shared/data/wikitext-2-raw/wiki.test.raw" "$data/wiki.test.raw"
fi
tiny=$data/gpt2-tiny-wt2
ppl_ref=581.1065448201081

for lab in ${LABS:-attention_lab gemv_lab gemm_lab cublaslt_lab wgmma_lab persistent_lab decode_persistent_lab}; do
  [[ -z ${SKIP_LABS:-} && -x $work/bin/$lab ]] && run 150 "$work/bin/$lab" --json "$out/labs.jsonl"
done
run 120 python3 scripts/gpu/reference.py prepare --work "$work" --carry "$data" --json "$results"
# The unit tests link the whole engine registry (the native CPU engine's oneDNN, OpenBLAS, ...): binlib above.
if [[ -x $work/bin/cuda_engine_test ]]; then
  lib_wrapper "$work/cuda_engine_test-wrapper" "$binlib" "$work/bin/cuda_engine_test"
  run 120 "$work/cuda_engine_test-wrapper" --gtest_brief=0
fi
run 40 "$bin" logits --model "$m124" --precision fp32 --ids "$work/ids.bin" --batch 2 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
run 40 "$bin" logits --model "$m124" --precision fp16 --ids "$work/ids.bin" --batch 2 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
# B1 x S128 (128 rows): on an H100 / H200 the persistent few-row path (layers_persistent.cuh)
run 40 "$bin" logits --model "$m124" --precision fp16 --ids "$work/ids.bin" --batch 1 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
run 40 "$bin" logits --model "$m124" --precision bf16 --ids "$work/ids.bin" --batch 1 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
run 30 "$bin" ppl --model "$tiny" --precision fp32 --tokens "$work/wt2_test.bin" --expect $ppl_ref --json "$results"
run 30 "$bin" ppl --model "$tiny" --precision fp16 --tokens "$work/wt2_test.bin" --expect $ppl_ref --json "$results"
run 90 "$bin" bench --model "$m124" --precision fp16 --iters $iters --warmup $warmup --peak-tflops $tf --peak-tbps $bw --json "$results"
run 40 "$bin" ppl --model "$m124" --precision fp16 --tokens "$work/wt2_test.bin" --json "$results"
run 40 "$bin" logits --model "$m124" --precision bf16 --ids "$work/ids.bin" --batch 2 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
run 40 "$bin" logits --model "$m124" --precision tf32 --ids "$work/ids.bin" --batch 2 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
run 30 "$bin" ppl --model "$tiny" --precision bf16 --tokens "$work/wt2_test.bin" --expect $ppl_ref --json "$results"
run 30 "$bin" ppl --model "$tiny" --precision tf32 --tokens "$work/wt2_test.bin" --expect $ppl_ref --json "$results"
[[ -n ${FULL:-} ]] && run 120 "$bin" bench --model "$m124" --precision bf16 --iters $iters --warmup $warmup --json "$results"
[[ -n ${FULL:-} ]] && run 120 "$bin" bench --model "$m124" --precision fp32 --iters 10 --warmup 2 --json "$results"
if [[ -n $gptbench && -z ${SKIP_INT8:-} && ! -x $gb/bin/gptbench ]]; then
  # a data-only bundle (no bin/: small enough to carry beside the binaries): no calibration, so no int8 rows
  echo "{\"check\": \"SKIPPED\", \"what\": \"int8 (calibration caches)\", \"why\": \"the carried bundle has no bin/gptbench\"}" | tee -a "$results"
elif [[ -n $gptbench && -z ${SKIP_INT8:-} ]]; then
  valid=$gb/shared/data/wikitext-2/wiki.valid.tokens
  run 120 "$gptbench" calibrate --model "$tiny" --dataset "$valid" --method mse --out "$work/calib-tiny"
  run 240 "$gptbench" calibrate --model "$m124" --dataset "$valid" --method mse --samples 16 --out "$work/calib-124m"
  calib_tiny=$(ls "$work"/calib-tiny/mse/*.calib 2>/dev/null | head -1)
  calib_124m=$(ls "$work"/calib-124m/mse/*.calib 2>/dev/null | head -1)
  if [[ -n $calib_tiny && -n $calib_124m ]]; then
    run 40 "$bin" logits --model "$m124" --precision int8 --opt calibration_cache=$calib_124m --ids "$work/ids.bin" --batch 2 --seq 128 --ref "$work/ref_fp32.bin" --json "$results"
    run 30 "$bin" ppl --model "$tiny" --precision int8 --opt calibration_cache=$calib_tiny --tokens "$work/wt2_test.bin" --expect $ppl_ref --json "$results"
    run 90 "$bin" bench --model "$m124" --precision int8 --opt calibration_cache=$calib_124m --variant default --iters $iters --warmup $warmup --peak-tflops $tf --peak-tbps $bw --json "$results"
    run 40 "$bin" ppl --model "$m124" --precision int8 --opt calibration_cache=$calib_124m --tokens "$work/wt2_test.bin" --json "$results"
    [[ -n ${PROFILE:-} ]] && run 120 "$bin" profile --model "$m124" --precision int8 --opt calibration_cache=$calib_124m --shapes 1x128,8x512 2> "$out/profile-int8.txt"
  fi
fi
# Decode, for comparison: without the fused matrix-vector kernels (cuBLASLt + separate LayerNorm kernels), and
# with them as the 5-kernel chain instead of the persistent step.
for variant in ${DECODE_VARIANTS:-gemv_kernels=0 decode_persistent=0}; do
  run 60 "$bin" bench --model "$m124" --precision fp16 --shapes none --opt "$variant" --json "$results"
done
[[ -n ${PROFILE:-} ]] && run 120 "$bin" profile --model "$m124" --precision fp16 --shapes 1x128,8x512 2> "$out/profile-fp16.txt"
[[ -z ${SKIP_ANCHORS:-} ]] && run 300 python3 scripts/gpu/reference.py anchors --work "$work" --iters ${ANCHOR_ITERS:-50} --warmup ${ANCHOR_WARMUP:-10} --json "$results"
# torch.compile (the anchors file's fastest PyTorch figures; each shape compiles for a minute or more)
[[ -n ${COMPILE_ANCHORS:-} ]] && run 420 python3 scripts/gpu/reference.py compile --work "$work" --iters ${ANCHOR_ITERS:-50} --warmup ${ANCHOR_WARMUP:-10} --json "$results"
python3 scripts/gpu/summarize.py "$results" > "$out/summary.md" && cat "$out/summary.md"
