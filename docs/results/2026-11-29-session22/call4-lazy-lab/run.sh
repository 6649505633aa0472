#!/usr/bin/env bash
# Session 22, call 4: attention_lab after the mask moved behind the diagonal-tile branch in every non-PIPE
# version (v14 and v19 are now the engine's kernels with it), and LAZY (the running max moved only past 2^8):
# v21 = v14 + LAZY, v22 = v19 + LAZY; every shape, CPU reference checks; two rounds.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
lab=.device-carry/lab/attention_lab
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
for v in 14 21 19 22 14 21 19 22; do timeout 120 $lab --version $v --min-ms 30 --json $OUT/attn.jsonl; echo "rc $?"; done > $OUT/attn.txt 2>&1
grep -E 'FAIL|rc [1-9]' $OUT/attn.txt | head; grep -c PASS $OUT/attn.txt
python3 - $OUT/attn.jsonl <<'PY'
import json,sys,collections
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    r=json.loads(l); t[(r['dtype'],r['B'],r['S'],r['D'])].append((r['version'],r['us'],r['max_abs_err']))
for k,v in t.items(): print(k, ' '.join(f"v{a}:{b:.2f}({e:.1e})" for a,b,e in v[:4]), '|', ' '.join(f"v{a}:{b:.2f}" for a,b,e in v[4:]))
PY
