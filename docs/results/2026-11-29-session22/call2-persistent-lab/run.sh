#!/usr/bin/env bash
# Session 22, call 2: the persistent attention (attention_lab v21 / v22: attention_wgmma<T, 1, 2|3, false, false,
# true>) against the engine's two kernels (v14 plain, v19 key split) on every shape of the lab, each checked
# against the CPU reference (and the work counters checked to be left zero); then Nsight Compute's warp states of
# v21 at B8 x S512 beside call 1's v14. Only attention_lab was carried (.device-carry/lab/).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
lab=.device-carry/lab/attention_lab; w=/tmp/lab; mkdir -p $w
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
echo "== lab [$(date +%T)]"
for v in 14 19 21 22 14 21; do timeout 120 $lab --version $v --min-ms 30 --json $OUT/attn.jsonl; echo "rc $?"; done > $OUT/attn.txt 2>&1
grep -E 'FAIL|rc [1-9]' $OUT/attn.txt | head; grep -c PASS $OUT/attn.txt
python3 - $OUT/attn.jsonl <<'PY'
import json,sys,collections
t=collections.defaultdict(list)
for l in open(sys.argv[1]):
    r=json.loads(l); t[(r['dtype'],r['B'],r['S'],r['D'])].append((r['version'],r['us']))
for k,v in t.items(): print(k, ' '.join(f"v{a}:{b:.2f}" for a,b in v))
PY
echo "== ncu v21 8x512 [$(date +%T)]"
timeout 150 ncu --clock-control none -k regex:attention_wgmma -s 3 -c 1 --set full --import-source yes \
  -o $w/rep $lab --version 21 --shape 8x512 --min-ms 1 > $w/ncu_run.txt 2>&1; echo "rc $?"
ncu --import $w/rep.ncu-rep --page details > $w/ncu_details.txt 2>&1
ncu --import $w/rep.ncu-rep --page raw --csv > $w/ncu_raw.csv 2>&1
ncu --import $w/rep.ncu-rep --page source --csv --print-source sass > $w/ncu_source.csv 2>&1
grep -E 'Duration|SM Frequency|Issue Slots|Warp Cycles Per Issued|Achieved Occ|Theoretical Occ|Registers Per|Eligible' $w/ncu_details.txt | head -20
tar -C $w -czf $OUT/ncu.tar.gz ncu_run.txt ncu_details.txt ncu_raw.csv ncu_source.csv
echo "== done [$(date +%T)]"
