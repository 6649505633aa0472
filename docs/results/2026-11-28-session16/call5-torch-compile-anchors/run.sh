#!/usr/bin/env bash
# Session 16, call 5: the anchors file's torch.compile figures (transformers SDPA fp16 under
# torch.compile(max-autotune-no-cudagraphs), B1 x S128 and B8 x S512) rerun on this card
# (`scripts/gpu/reference.py compile`, new), beside the engine's fp16 prefill of the same shapes (binaries of 9ffb50b)
# and the same model uncompiled (transformers SDPA fp16), all in this call.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
export LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH
data=$w/data; mkdir -p $data
ln -sfn $gb/shared/models/gpt2-tiny-wt2 $data/gpt2-tiny-wt2; ln -sfn $gb/shared/data/wikitext-2-raw/wiki.test.raw $data/wiki.test.raw
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 150 python3 scripts/gpu/reference.py prepare --work $w --carry $data --json $OUT/prep.jsonl > $OUT/prepare.txt 2>&1; echo "prepare rc $?"
echo "== torch.compile [$(date +%T)]"
timeout 400 python3 scripts/gpu/reference.py compile --work $w --iters 50 --warmup 10 --json $OUT/results.jsonl 2> $OUT/compile.txt; echo "compile rc $?"
grep -v "^\s*$" $OUT/compile.txt | tail -5
echo "== engine and SDPA fp16 [$(date +%T)]"
for round in 1 2; do
  timeout 60 $w/bin/gptbench_cuda_check bench --model $w/gpt2-random --precision fp16 --shapes 1x128,8x512 --iters 50 --json $OUT/results.jsonl 2>/dev/null | python3 -c "
import json,sys
for l in sys.stdin:
    r=json.loads(l)
    if r['check']=='prefill_speed': print('  engine fp16 %dx%d gpu %.4f ms wall %.4f'%(r['batch'],r['seq'],r['gpu_ms_median'],r['wall_ms_median']))"
done
python3 - $OUT/results.jsonl <<'PY'
import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)
    if r.get('check')=='pytorch_anchor': print(r['implementation'], r['dtype'], {k:round(v,3) for k,v in r.items() if k.endswith('_ms')}, r.get('compile_seconds'))
PY
echo "== done [$(date +%T)]"
