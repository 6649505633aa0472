#!/usr/bin/env bash
# Session 15, call 8 (H100): the committed persistent decode step (bffd356, with the scores' alignment fix):
# GPU unit tests; decode_persistent_lab; engine decode fp16 decode_persistent=1 / 0 (3 alternating rounds); the
# runner (gptbench run, configs/matrix.yaml restricted to the CUDA engine's fp16 / bf16 cells) on the same card.
set -uo pipefail
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
w=/tmp/s15w; rm -rf $w; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/s15gb; rm -rf $gb; mkdir -p $gb; tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
data=$w/data; mkdir -p $data
ln -sfn $gb/shared/models/gpt2-tiny-wt2 $data/gpt2-tiny-wt2; ln -sfn $gb/shared/data/wikitext-2-raw/wiki.test.raw $data/wiki.test.raw
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
echo "== cuda_engine_test [$(date +%T)]"
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/cuda_engine_test.txt 2>&1; echo "tests rc $?"
grep -E "^\[  (PASSED|FAILED|  SKIPPED) |Failure|exception" $OUT/cuda_engine_test.txt | tail -30
echo "== decode_persistent_lab [$(date +%T)]"
timeout 150 $w/bin/decode_persistent_lab --json $OUT/labs.jsonl > $OUT/decode_persistent_lab.txt 2>&1; echo "lab rc $?"
grep -v "^check" $OUT/decode_persistent_lab.txt; grep -c "ok$" $OUT/decode_persistent_lab.txt
echo "== reference prepare [$(date +%T)]"
timeout 150 python3 scripts/gpu/reference.py prepare --work $w --carry $data --json $OUT/results.jsonl > $OUT/prepare.txt 2>&1; echo "prepare rc $?"
bin=$w/bin/gptbench_cuda_check
for round in 1 2 3; do
  for v in decode_persistent=1 decode_persistent=0; do
    timeout 60 $bin bench --model $w/gpt2-random --precision fp16 --shapes none --opt $v --json $OUT/results.jsonl > /dev/null 2>&1
  done
done
timeout 40 $bin logits --model $w/gpt2-random --precision fp16 --ids $w/ids.bin --batch 2 --seq 128 --ref $w/ref_fp32.bin --json $OUT/results.jsonl > /dev/null 2>&1; echo "logits fp16 rc $?"
python3 - $OUT/results.jsonl <<'PY'
import json,sys
for line in open(sys.argv[1]):
    try: r=json.loads(line)
    except Exception: continue
    c=r.get("check")
    if c=="decode_speed": print("decode", r.get("variant"), r.get("precision"), "batch", r.get("batch"), "tok/s %.0f"%r.get("new_tokens_per_s_per_sequence_median",0), "step gpu ms %.4f"%r.get("step_gpu_ms_median",0))
    elif c=="logits": print("logits", r.get("precision"), {k:r[k] for k in r if "rel" in k or "top1" in k})
    elif c=="FAILED": print(r)
PY
echo "== runner [$(date +%T)]"
OUT=$OUT STEPS=matrix MATRIX_TIMEOUT=300 bash scripts/gpu/run_study.sh --set 'backends=[{name: native, device: cuda, precisions: [fp16, bf16]}]' > $OUT/study.txt 2>&1; echo "study rc $?"
grep -E "matrix exit|VALID|INVALID" $OUT/study.txt | head
tar -C /tmp -xzf $OUT/matrix.tar.gz matrix/processed/latency_summary.csv 2>/dev/null && cut -d, -f1,10,11,13,20,21 /tmp/matrix/processed/latency_summary.csv
echo "== done [$(date +%T)]"
