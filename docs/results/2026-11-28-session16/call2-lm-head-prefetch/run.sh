#!/usr/bin/env bash
# Session 16, call 2: the LM head's first rows requested into L2 during the persistent kernels' last layer
# (option lm_head_l2_prefetch_mb): fp16 B1 x S128 prefill and batch-1 decode, 0 / 16 / 32 / 48 MB in 3
# alternating rounds on one card; then the GPU unit tests (default options) and fp16 logits with 32 MB.
set -uo pipefail
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
w=/tmp/s16w; rm -rf $w; mkdir -p $w; tar -C $w -xJf .device-carry/s16/bins.tar.xz
gb=/tmp/s16gb; rm -rf $gb; mkdir -p $gb; tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
export LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH
data=$w/data; mkdir -p $data
ln -sfn $gb/shared/models/gpt2-tiny-wt2 $data/gpt2-tiny-wt2; ln -sfn $gb/shared/data/wikitext-2-raw/wiki.test.raw $data/wiki.test.raw
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
echo "== reference prepare [$(date +%T)]"
timeout 150 python3 scripts/gpu/reference.py prepare --work $w --carry $data --json $OUT/results.jsonl > $OUT/prepare.txt 2>&1; echo "prepare rc $?"
bin=$w/src/backends/cuda/gptbench_cuda_check
for round in 1 2 3; do
  for mb in ${MBS:-0 16 32 48}; do
    echo "== round $round lm_head_l2_prefetch_mb=$mb [$(date +%T)]"
    timeout 90 $bin bench --model $w/gpt2-random --precision fp16 --shapes 1x128 --iters 200 --opt lm_head_l2_prefetch_mb=$mb --json $OUT/results.jsonl 2>/dev/null | python3 -c "
import json,sys
for l in sys.stdin:
    r=json.loads(l)
    if r['check']=='prefill_speed': print('  prefill %dx%d gpu %.4f min %.4f wall %.4f'%(r['batch'],r['seq'],r['gpu_ms_median'],r['gpu_ms_min'],r['wall_ms_median']))
    if r['check']=='decode_speed': print('  decode b%d %.0f tok/s step gpu %.4f'%(r['batch'],r['new_tokens_per_s_per_sequence_median'],r['step_gpu_ms_median']))"
  done
done
echo "== logits fp16 with 32 MB [$(date +%T)]"
timeout 60 $bin logits --model $w/gpt2-random --precision fp16 --ids $w/ids.bin --batch 2 --seq 128 --ref $w/ref_fp32.bin --opt lm_head_l2_prefetch_mb=32 --json $OUT/results.jsonl | head -c 600; echo
echo "== cuda_engine_test [$(date +%T)]"
timeout 200 $w/tests/cuda/cuda_engine_test > $OUT/cuda_engine_test.txt 2>&1; echo "tests rc $?"
grep -E "^\[  (PASSED|FAILED) |tests ran" $OUT/cuda_engine_test.txt | tail -10
echo "== done [$(date +%T)]"
