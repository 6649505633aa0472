#!/usr/bin/env bash
# Session 22, call 3: attention_lab with the new versions on every shape, CPU reference checks: v23 (v14, the mask
# only on diagonal tiles), v24 / v25 (LAG: tile t's S product issued before tile t-1's PV product, which runs
# during tile t's softmax; rings of 2 / 3 slots, 106 registers: 3 blocks an SM), v21 (persistent, first items
# without the atomic) against v14 (the engine's plain kernel) and v19 (its key split); v14, v23 and v24 twice.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
lab=.device-carry/lab/attention_lab
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
for v in 14 23 24 25 21 19 14 23 24 25; do timeout 120 $lab --version $v --min-ms 30 --json $OUT/attn.jsonl; echo "rc $?"; done > $OUT/attn.txt 2>&1
grep -E 'FAIL|rc [1-9]' $OUT/attn.txt | head; grep -c PASS $OUT/attn.txt
python3 - $OUT/attn.jsonl <<'PY'
import json,sys,collections
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    r=json.loads(l); t[(r['dtype'],r['B'],r['S'],r['D'])].append((r['version'],r['us']))
for k,v in t.items(): print(k, ' '.join(f"v{a}:{b:.2f}" for a,b in v))
PY
