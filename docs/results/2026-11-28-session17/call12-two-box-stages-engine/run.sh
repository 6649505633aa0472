#!/usr/bin/env bash
# Session 17, call 12: the ring stages of two boxes in the engine (the attention projection now in k splits of 256:
# persistent_proj_splits), binaries of this tree: persistent_lab in full (every variant against the CPU reference,
# the same bits twice) and its --weights-order A/B against the kernel before (persistent_lab.base), alternating; the
# GPU unit tests; the reference checkpoint; the engine's fp16 / bf16 B1 x S128 prefill and fp16 decode.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
tar -C $w/bin -xJf .device-carry/lab/lab.tar.xz
# (not the full gptbench bundle: with the binaries and the tree it passes the 64 MiB a call carries. minib.tar.xz
# holds the Debian libraries cuda_engine_test and gptbench_cuda_check link, and the tokenizer files + WikiText-2
# test text that reference.py prepare reads.)
gb=/tmp/minib; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/lab/minib.tar.xz
export LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH
data=$gb/data
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
echo "== persistent_lab [$(date +%T)]"
timeout 150 $w/bin/persistent_lab --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "rc $?"
grep -E "FAIL|ALL CHECKS" $OUT/persistent_lab.txt | head -5
for r in 1 2; do
  for v in persistent_lab.base persistent_lab; do
    echo "== $v round $r" >> $OUT/ab.txt
    timeout 60 $w/bin/$v --weights-order >> $OUT/ab.txt 2>&1
  done
done
grep -E '==|after all stages' $OUT/ab.txt
echo "== cuda_engine_test [$(date +%T)]"
timeout 240 $w/bin/cuda_engine_test > $OUT/cuda_engine_test.txt 2>&1; echo "tests rc $?"
grep -E "^\[  (PASSED|FAILED) |tests ran|FAILED" $OUT/cuda_engine_test.txt | tail -8
echo "== reference [$(date +%T)]"
timeout 150 python3 scripts/gpu/reference.py prepare --work $w --carry $data --json $OUT/results.jsonl > $OUT/prepare.txt 2>&1; echo "prepare rc $?"
for round in 1 2; do
  timeout 60 $w/bin/gptbench_cuda_check bench --model $w/gpt2-random --precision fp16 --shapes 1x128 --iters 200 --json $OUT/results.jsonl 2>/dev/null > /dev/null
done
timeout 60 $w/bin/gptbench_cuda_check bench --model $w/gpt2-random --precision bf16 --shapes 1x128 --iters 200 --json $OUT/results.jsonl 2>/dev/null > /dev/null
python3 - $OUT/results.jsonl <<'PY'
import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)
    c=r.get('check')
    if c=='prefill_speed': print('prefill %s %dx%d gpu %.4f ms wall %.4f'%(r.get('precision','?'),r['batch'],r['seq'],r['gpu_ms_median'],r['wall_ms_median']))
    if c=='decode_speed' and r['batch']==1: print('decode %s b1 %.0f tok/s'%(r.get('precision','?'),r['new_tokens_per_s_per_sequence_median']))
PY
echo "== done [$(date +%T)]"
