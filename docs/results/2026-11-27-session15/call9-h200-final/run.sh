#!/usr/bin/env bash
# Session 15, call 9: the final code (accumulate_stage shared; the persistent prefill kernel without its removed lab
# switch): GPU unit tests, decode_persistent_lab, persistent_lab --trace-only, engine decode and B1 x S128 prefill.
set -uo pipefail
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
w=/tmp/s15w; rm -rf $w; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/s15gb; rm -rf $gb; mkdir -p $gb; tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
data=$w/data; mkdir -p $data
ln -sfn $gb/shared/models/gpt2-tiny-wt2 $data/gpt2-tiny-wt2; ln -sfn $gb/shared/data/wikitext-2-raw/wiki.test.raw $data/wiki.test.raw
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/cuda_engine_test.txt 2>&1; echo "tests rc $?"
grep -E "^\[  (PASSED|FAILED|  SKIPPED) |Failure|exception" $OUT/cuda_engine_test.txt | tail -30
timeout 150 $w/bin/decode_persistent_lab --json $OUT/labs.jsonl > $OUT/decode_persistent_lab.txt 2>&1; echo "decode lab rc $?"
grep -E "^time|FAILED|passed" $OUT/decode_persistent_lab.txt
timeout 100 $w/bin/persistent_lab --trace-only --json $OUT/labs.jsonl > $OUT/persistent_lab.txt 2>&1; echo "persistent lab rc $?"
head -12 $OUT/persistent_lab.txt
timeout 150 python3 scripts/gpu/reference.py prepare --work $w --carry $data --json $OUT/results.jsonl > $OUT/prepare.txt 2>&1; echo "prepare rc $?"
bin=$w/bin/gptbench_cuda_check
timeout 60 $bin bench --model $w/gpt2-random --precision fp16 --shapes 1x128 --iters 30 --warmup 5 --json $OUT/results.jsonl > /dev/null 2>&1; echo "bench rc $?"
timeout 60 $bin bench --model $w/gpt2-random --precision fp16 --shapes none --opt decode_persistent=0 --json $OUT/results.jsonl > /dev/null 2>&1
python3 - $OUT/results.jsonl <<'PY'
import json,sys
for line in open(sys.argv[1]):
    try: r=json.loads(line)
    except Exception: continue
    c=r.get("check")
    if c=="decode_speed": print("decode", r.get("variant"), r.get("precision"), "batch", r.get("batch"), "tok/s %.0f"%r.get("new_tokens_per_s_per_sequence_median",0), "step gpu ms %.4f"%r.get("step_gpu_ms_median",0))
    elif c and "prefill" in str(c): print(c, r.get("batch"), r.get("seq"), "gpu ms %.4f"%r.get("gpu_ms_median",0))
    elif c=="FAILED": print(r)
PY
