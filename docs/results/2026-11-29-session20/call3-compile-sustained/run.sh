#!/usr/bin/env bash
# Session 20, call 3 (binaries of d1f2ed7): on one card, (1) the engine's fp16 prefill B1 x S128 / B8 x S512 and
# transformers SDPA fp16 beside torch.compile(max-autotune-no-cudagraphs) of the same model (the anchors file's
# fastest PyTorch figures; not rerun since the sixteenth session), and (2) whether any existing engine option runs
# the B8 x S512 prefill faster once the card sits at its power limit: 3 alternating rounds of 1,000 back-to-back
# calls for the default and four variants that move different bytes or pick other products (earlier A/Bs used
# 30-100 calls: the boost-clock regime).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
w=/tmp/cuda-engine-work
# prepare (the 124M checkpoint) + engine fp16 prefill, 3 rounds of 50 calls
OUT=$OUT WORK=$w VARIANTS="default" SHAPES=1x128,8x512 ROUNDS=3 ITERS=50 timeout 150 scripts/gpu/prefill_variants.sh 2> $OUT/engine.log
mv $OUT/variants.jsonl $OUT/engine.jsonl
echo "== torch.compile [$(date +%T)]"
timeout 300 python3 scripts/gpu/reference.py compile --work $w --iters 50 --warmup 10 --json $OUT/compile.jsonl 2> $OUT/compile.txt; echo "compile rc $?"
python3 - $OUT/compile.jsonl <<'PY'
import json,sys
for l in open(sys.argv[1]):
    r=json.loads(l)
    print({k: (round(v,3) if isinstance(v,float) else v) for k,v in r.items()})
PY
echo "== sustained B8 x S512 [$(date +%T)]"
(nvidia-smi --query-gpu=timestamp,power.draw,clocks.sm,temperature.gpu --format=csv -lms 200 > $OUT/sustained-nvsmi.csv 2>&1 &)
OUT=$OUT WORK=$w VARIANTS="default gemm_tune_l2=hot lm_head_pingpong=0 layernorm_rows=1 attention=mma" SHAPES=8x512 ROUNDS=3 ITERS=1000 \
  timeout 240 scripts/gpu/prefill_variants.sh 2> $OUT/sustained.log; echo "sustained rc $?"
pkill -f 'nvidia-smi --query-gpu=timestamp' || true
