#!/usr/bin/env bash
# Times the CUDA engine's prefill under option variants on one card, the variants alternating round by round so
# that clock and temperature drift do not favour whichever runs first (issue 7's prefill goals).
# Environment:
#   VARIANTS  space-separated variants, each "default" or a comma-separated option list
#             (default: "default residual_epilogue=0 gemm_tune_l2=hot")
#   SHAPES    prefill shapes BxS,... (default 1x128,8x512); PRECISION (default fp16); ROUNDS (default 3);
#   ITERS     timed calls per shape and round (default 30)
# Needs what check_cuda_engine.sh needs (.device-carry/cuda/bins.tar.xz, the bundle for the data) and writes
# $OUT/variants.jsonl (one prefill_speed / decode_speed line per variant, shape and round; "variant" names it) and
# prints each variant's medians over the rounds (prefill GPU ms, decode new tokens/s per sequence).
# Run on the GPU machine from the repository root.
set -uo pipefail
carry=${CARRY:-.device-carry/cuda}
out=${OUT:-/tmp/cuda-engine-out}
work=${WORK:-/tmp/cuda-engine-work}
mkdir -p "$out" "$work"
source "$(dirname "${BASH_SOURCE[0]}")/device_env.sh"
cuda_library_path
[[ -x $work/bin/gptbench_cuda_check ]] || tar -C "$work" -xJf "$carry/bins.tar.xz"
data=$carry
if [[ -f .device-carry/gptbench/bundle.tar.xz ]]; then
  gb=/tmp/gptbench-bundle
  [[ -d $gb/shared ]] || { mkdir -p "$gb" && tar -C "$gb" -xJf .device-carry/gptbench/bundle.tar.xz; }
  data=$work/data
  mkdir -p "$data"
  ln -sfn "$gb/shared/models/gpt2-tiny-wt2" "$data/gpt2-tiny-wt2"
  ln -sfn "$gb/shared/data/wikitext-2-raw/wiki.test.raw" "$data/wiki.test.raw"
fi
libdir=$(carried_libdir "$work" "${gb:-}")
# The GPT-2 124M-shaped checkpoint (transformers, seed 0), unless an earlier step of this call wrote it.
[[ -f $work/gpt2-random/config.json ]] ||
  timeout 120 python3 scripts/gpu/reference.py prepare --work "$work" --carry "$data" --json "$out/prepare.jsonl"
for round in $(seq 1 "${ROUNDS:-3}"); do
  for variant in ${VARIANTS:-default residual_epilogue=0 gemm_tune_l2=hot}; do
    opt=()
    [[ $variant != default ]] && opt=(--opt "$variant")
    echo "+ [$(date +%T)] round $round: $variant" >&2
    timeout 90 env LD_LIBRARY_PATH="$libdir:${LD_LIBRARY_PATH:-}" "$work/bin/gptbench_cuda_check" bench --model "$work/gpt2-random" --precision "${PRECISION:-fp16}" \
      --shapes "${SHAPES:-1x128,8x512}" --iters "${ITERS:-30}" --warmup 5 --variant "$variant" "${opt[@]}" \
      --decode-new 32 --json "$out/variants.jsonl" ||
      echo "{\"check\": \"FAILED\", \"variant\": \"$variant\", \"round\": $round}" >> "$out/variants.jsonl"
  done
done
# Median per (variant, shape) over the rounds' medians: prefill GPU ms, then decode new tokens/s per sequence.
python3 - "$out/variants.jsonl" <<'EOF'
import collections, json, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("check") == "prefill_speed":
        rows[(f'B{r["batch"]}xS{r["seq"]}', r["variant"], "ms")].append(r["gpu_ms_median"])
    elif r.get("check") == "decode_speed":
        rows[(f'decode B{r["batch"]}', r["variant"], "new tokens/s")].append(r["new_tokens_per_s_per_sequence_median"])
for (shape, variant, unit), v in sorted(rows.items(), key=lambda kv: (kv[0][2], kv[0][0], kv[0][1])):
    digits = 4 if unit == "ms" else 1
    print(f"{shape:10s} {variant:50s} median {statistics.median(v):.{digits}f} {unit}  rounds {' '.join(f'{x:.{digits}f}' for x in v)}")
EOF
