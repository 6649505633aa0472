#!/usr/bin/env bash
# Runs on the GPU machine (device tool), from the repository root, with .device-carry/gptbench carried:
#   1. the tokenizer's Hugging Face parity cases (transformers is installed there),
#   2. configs/matrix.yaml on a random GPT-2 124M checkpoint (speed; native CUDA, native CPU, ONNX Runtime CPU),
#      then its digest (scripts/gpu/matrix_digest.py: verdict, the CUDA fp16 cells, the gates),
#   3. configs/baseline.yaml's perplexity on gpt2-tiny-wt2 on the CUDA engine (accuracy, whole WikiText-2 test).
# Results go to $OUT as archives (the device call returns at most 8 files). Extra arguments go to the matrix run,
# e.g. --set repetitions=3. MATRIX_TIMEOUT (seconds, default 560) bounds it; a run cut short still gets its
# report from what it finished. STEPS (default "tokenizer matrix accuracy") picks the steps; MATRIX_RESUME names a
# matrix.tar.gz of an earlier call (carried along) whose run is continued with --resume (same --set arguments).
set -uo pipefail
root=$(pwd)
out=${OUT:-/tmp/out}
gb=/tmp/gptbench-bundle
rm -rf "$gb" && mkdir -p "$gb" && tar -C "$gb" -xJf .device-carry/gptbench/bundle.tar.xz
export GPTBENCH_ORT_LIBRARY="$gb/lib/libonnxruntime.so.1"
export GPTBENCH_SHARED_DIR="$gb/shared"
source "$(dirname "${BASH_SOURCE[0]}")/device_env.sh"
bin="$gb/gptbench"
lib_wrapper "$bin" "$gb/lib" "$gb/bin/gptbench"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$out/gpu.txt"
# OpenBLAS (the native CPU engine's attention products) did not recognise the GPU host's Xeon and fell back to its
# SSE3 "Prescott" kernel: name the kernel the CPU can run, as CI does (Haswell) on its AMD machines.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto}"

steps=${STEPS:-tokenizer matrix accuracy}
has() { case " $steps " in *" $1 "*) return 0 ;; esac; return 1; }

if has tokenizer; then
echo "== tokenizer parity with GPT2TokenizerFast"
timeout 120 python3 scripts/reference/tokenizer_cases.py "$GPTBENCH_SHARED_DIR/models/gpt2-tiny-wt2" && cp tests/tokenizer/data/hf_cases.json "$out/"
fi

if has matrix; then
echo "== matrix study (GPT-2 124M shape, random weights)"
"$bin" init-random --shape gpt2 --out artifacts/gpt2-random
resume=()
if [ -n "${MATRIX_RESUME:-}" ]; then tar -C "$out" -xzf "$MATRIX_RESUME" && resume=(--resume); fi
start=$(date +%s)
timeout "${MATRIX_TIMEOUT:-560}" "$bin" run --config configs/matrix.yaml --out "$out/matrix" "${resume[@]}" "$@"
status=$?
echo "matrix exit $status after $(( $(date +%s) - start )) s"
if [ "$status" = 124 ]; then "$bin" report "$out/matrix"; echo "report exit $?"; fi
python3 scripts/gpu/matrix_digest.py "$out/matrix"  # verdict, the CUDA fp16 cells, the gates
fi

if has accuracy; then
echo "== accuracy on the CUDA engine (gpt2-tiny-wt2, whole WikiText-2 test, ctx 1024 / stride 512)"
timeout "${ACCURACY_TIMEOUT:-150}" "$bin" run --config configs/baseline.yaml --out "$out/accuracy" \
  --set 'backends=[{name: native, device: cuda, precisions: [fp32, tf32, fp16, bf16, int8]}, {name: native, device: cpu, precisions: [fp32]}]' \
  --set 'scenarios=[{kind: prefill, batch: 1, seq: 128}]' --set repetitions=3 --set min_calls=3 --set cooldown_seconds=0
echo "accuracy exit $?"
fi
for d in matrix accuracy; do [ -d "$out/$d" ] && tar -C "$out" -czf "$out/$d.tar.gz" "$d" && rm -rf "${out:?}/$d"; done
ls -la "$out"
