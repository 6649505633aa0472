#!/usr/bin/env bash
# Session 20, call 5: lab/cuda/gemm_pingpong_lab (new; the tree of this commit) — GPT-2 124M's four per-layer
# products at 4,096 rows on the LM head's ping-pong schedule with a store epilogue, against cuBLASLt's cold-tuned
# pick (checks on odd row counts, then cold / hot timings); run twice, so that the card's drift shows.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
for run in 1 2; do
  echo "== run $run"
  timeout 200 .device-carry/pplab/gemm_pingpong_lab --json $OUT/labs.jsonl; echo "lab rc $?"
done
