#!/usr/bin/env bash
# Session 9, call 5: TMA fill rates (alone / multicast), then the whole engine check of the final code.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
timeout 60 $w/bin/tma_fill_lab --json $OUT/tma_fill.jsonl 2>&1 | tee $OUT/tma_fill_lab.txt
OUT=$OUT FULL=1 LABS="persistent_lab lm_head_lab" timeout 480 scripts/gpu/check_cuda_engine.sh > $OUT/check.log 2>&1; echo "check rc $?"
tail -5 $OUT/check.log; grep -c FAILED $OUT/results.jsonl
