#!/usr/bin/env bash
# Session 10, call 1: option residual_16bit (the cuBLASLt prefill's residual stream in 16 bits). GPU unit tests;
# accuracy with and without it (logits against transformers fp32 at B2 x S128, fp16 / bf16; tiny-model perplexity);
# prefill A/B, alternating rounds, on the shapes that take the cuBLASLt path; per-kernel times of one B8 x S512
# forward under Nsight Compute (no cache control: each kernel finds L2 as the one before left it), both variants.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
gb=/tmp/gptbench-bundle; rm -rf $gb; mkdir -p $gb && tar -C $gb -xJf .device-carry/gptbench/bundle.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
LD_LIBRARY_PATH=$gb/lib:$LD_LIBRARY_PATH timeout 200 $w/bin/cuda_engine_test > $OUT/unit_tests.txt 2>&1; echo "unit tests rc $?"
grep -E "^\[  (PASSED|FAILED|SKIPPED) |FAILED|Failure|Expected|Which is|actual" $OUT/unit_tests.txt | head -20
data=$w/data; mkdir -p $data
ln -sfn $gb/shared/models/gpt2-tiny-wt2 $data/gpt2-tiny-wt2
ln -sfn $gb/shared/data/wikitext-2-raw/wiki.test.raw $data/wiki.test.raw
timeout 120 python3 scripts/gpu/reference.py prepare --work $w --carry $data --json $OUT/prepare.jsonl > /dev/null 2>&1
bin=$w/bin/gptbench_cuda_check
acc=$OUT/accuracy.jsonl
for v in default residual_16bit=1; do
  opt=(); [[ $v != default ]] && opt=(--opt $v)
  for p in fp16 bf16; do
    echo "{\"variant\": \"$v\"}" >> $acc
    timeout 40 $bin logits --model $w/gpt2-random --precision $p --ids $w/ids.bin --batch 2 --seq 128 --ref $w/ref_fp32.bin --json $acc "${opt[@]}" 2>/dev/null
    timeout 30 $bin ppl --model $data/gpt2-tiny-wt2 --precision $p --tokens $w/wt2_test.bin --expect 581.1065448201081 --json $acc "${opt[@]}" 2>/dev/null
  done
  timeout 40 $bin ppl --model $w/gpt2-random --precision fp16 --tokens $w/wt2_test.bin --json $acc "${opt[@]}" 2>/dev/null
done
python3 - $acc <<'PY'
import json, sys
v = "?"
for line in open(sys.argv[1]):
    r = json.loads(line)
    if "variant" in r and len(r) == 1: v = r["variant"]; continue
    keep = {k: r[k] for k in ("check", "precision", "batch", "seq", "max_rel_err", "rel_norm_err", "ppl", "rel_diff_percent", "seconds", "wall_s") if k in r}
    print(v, keep)
PY
OUT=$OUT WORK=$w VARIANTS="default residual_16bit=1" SHAPES="2x128,8x128,8x512,32x128,1x1024" ROUNDS=3 \
  timeout 300 scripts/gpu/prefill_variants.sh 2> $OUT/variants.log | tee $OUT/variants-median.txt
for v in default residual_16bit=1; do
  opt=(); [[ $v != default ]] && opt=(--opt $v)
  timeout 60 $bin profile --model $w/gpt2-random --precision fp16 --shapes 8x512 "${opt[@]}" 2> $OUT/profile-$v.txt
  echo "== profile $v"; grep -v "^\[" $OUT/profile-$v.txt | grep -A40 "^profile" | head -30
done
echo "elapsed ${SECONDS}s"
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
for v in default residual_16bit=1; do
  (( SECONDS > 420 )) && { echo "no time left for ncu $v"; continue; }
  opt=(); [[ $v != default ]] && opt=(--opt $v)
  timeout 150 $NCU --cache-control none --clock-control none --csv --page raw --print-units base \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum,launch__grid_size \
    $bin bench --model $w/gpt2-random --precision fp16 --shapes 8x512 --iters 1 --warmup 1 --decode-new 0 "${opt[@]}" \
    > $OUT/ncu-$v.csv 2> $OUT/ncu-$v.log
  echo "ncu $v rc $?"
done
python3 scripts/gpu/kernel_times.py $OUT/ncu-default.csv $OUT/ncu-residual_16bit=1.csv | tee $OUT/kernel_times.txt
tar -C $OUT -czf $OUT/ncu.tar.gz $(cd $OUT && ls ncu-*) && rm -f $OUT/ncu-*.csv $OUT/ncu-*.log
tar -C $OUT -czf $OUT/profiles.tar.gz $(cd $OUT && ls profile-*.txt prepare.jsonl variants.log) && rm -f $OUT/profile-*.txt $OUT/prepare.jsonl $OUT/variants.log
