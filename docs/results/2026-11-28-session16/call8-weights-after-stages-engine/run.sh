#!/usr/bin/env bash
# Session 16, call 8: the prefill kernel with the next item's weights requested after all of an item's stages (the
# new default after call 7): persistent_lab in full (fp16 / bf16 against the CPU reference, the same bits twice,
# timing) and its --weights-order A/B; the GPU unit tests; fp16 / bf16 logits against transformers; the engine's
# fp16 B1 x S128 prefill (2 rounds).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
export LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH
data=$w/data; mkdir -p $data
ln -sfn $gb/shared/models/gpt2-tiny-wt2 $data/gpt2-tiny-wt2; ln -sfn $gb/shared/data/wikitext-2-raw/wiki.test.raw $data/wiki.test.raw
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
echo "== persistent_lab --weights-order [$(date +%T)]"
timeout 60 $w/bin/persistent_lab --weights-order --json $OUT/labs.jsonl > $OUT/weights_order.txt 2>&1; echo "rc $?"
grep "^round" $OUT/weights_order.txt
echo "== persistent_lab [$(date +%T)]"
timeout 150 $w/bin/persistent_lab --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "rc $?"
grep -E "FAIL|ALL CHECKS|forward \(12" $OUT/persistent_lab.txt | head -20
echo "== cuda_engine_test [$(date +%T)]"
timeout 200 $w/bin/cuda_engine_test > $OUT/cuda_engine_test.txt 2>&1; echo "tests rc $?"
grep -E "^\[  (PASSED|FAILED) |tests ran" $OUT/cuda_engine_test.txt | tail -5
echo "== reference + logits [$(date +%T)]"
timeout 150 python3 scripts/gpu/reference.py prepare --work $w --carry $data --json $OUT/results.jsonl > $OUT/prepare.txt 2>&1; echo "prepare rc $?"
for p in fp16 bf16; do
  timeout 60 $w/bin/gptbench_cuda_check logits --model $w/gpt2-random --precision $p --ids $w/ids.bin --batch 2 --seq 128 --ref $w/ref_fp32.bin --json $OUT/results.jsonl > /dev/null 2>&1; echo "logits $p rc $?"
done
for round in 1 2; do
  timeout 60 $w/bin/gptbench_cuda_check bench --model $w/gpt2-random --precision fp16 --shapes 1x128 --iters 200 --json $OUT/results.jsonl 2>/dev/null > /dev/null
done
python3 - $OUT/results.jsonl <<'PY'
import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)
    c=r.get('check')
    if c=='logits': print('logits', r['precision'], {k:r[k] for k in r if 'rel' in k or 'top1' in k})
    if c=='prefill_speed': print('prefill fp16 %dx%d gpu %.4f ms wall %.4f'%(r['batch'],r['seq'],r['gpu_ms_median'],r['wall_ms_median']))
    if c=='decode_speed' and r['batch']==1: print('decode b1 %.0f tok/s'%r['new_tokens_per_s_per_sequence_median'])
PY
echo "== done [$(date +%T)]"
