#!/usr/bin/env bash
# Runs variants of one kernel lab side by side on the GPU machine (packed here by scripts/gpu/pack_lab_variants.sh
# and carried as .device-carry/lab): each variant's full run once (its CPU reference checks, timings, traces), then
# ROUNDS rounds of the A/B run (the lab with AB_ARGS), the variants alternating within each round so that clock and
# temperature drift do not favour whichever runs first.
# Usage (from the repository root): OUT=... scripts/gpu/lab_ab.sh NAME ...
# Environment: LAB (default persistent_lab); AB_ARGS (default --weights-order, whose "after all stages" rows time
# the persistent kernel's forward); ROUNDS (default 2); FULL_LIMIT / AB_LIMIT seconds per run (100 / 60).
# Output: $OUT/$LAB-NAME.txt and $OUT/labs-NAME.jsonl (full runs), $OUT/ab.txt (the rounds); the checks' verdicts
# and the A/B's forward times on stdout.
set -uo pipefail
out=${OUT:-/tmp/lab-ab-out}
lab=${LAB:-persistent_lab}
ab_args=${AB_ARGS:---weights-order}
rounds=${ROUNDS:-2}
[[ $# -ge 1 ]] || { echo "usage: OUT=... $0 NAME ..." >&2; exit 2; }
source "$(dirname "${BASH_SOURCE[0]}")/device_env.sh"
cuda_library_path
work=$(mktemp -d)
mkdir -p "$out"
tar -C "$work" -xJf .device-carry/lab/lab.tar.xz || exit 1
for v in "$@"; do
  [[ -x $work/$lab.$v ]] || { echo "$0: $lab.$v is not in .device-carry/lab/lab.tar.xz" >&2; exit 1; }
done
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee "$out/gpu.txt"
for v in "$@"; do
  timeout "${FULL_LIMIT:-100}" "$work/$lab.$v" --json "$out/labs-$v.jsonl" > "$out/$lab-$v.txt" 2>&1
  echo "== $v: full run rc $?; $(grep -E 'ALL CHECKS|FAILED \(' "$out/$lab-$v.txt" | tail -1)"
done
for ((r = 1; r <= rounds; ++r)); do
  for v in "$@"; do
    echo "== $v round $r" >> "$out/ab.txt"
    timeout "${AB_LIMIT:-60}" "$work/$lab.$v" $ab_args >> "$out/ab.txt" 2>&1
  done
done
if [[ $lab == persistent_lab && $ab_args == --weights-order ]]; then
  grep -E '^== |after all stages' "$out/ab.txt"
else
  cat "$out/ab.txt"
fi
