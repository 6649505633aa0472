#!/usr/bin/env bash
# Session 21, call 3: attention_lab (all versions, every shape and type, CPU reference checks) with the new
# versions v19 / v20 (the key split inside the block: attention_wgmma<T, 2, 2|3, false, true>). Only the lab
# binary was carried (.device-carry/lab/attention_lab, built here by `ninja -C build attention_lab`).
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,clocks.max.sm,power.limit --format=csv,noheader
timeout 400 .device-carry/lab/attention_lab --json $OUT/attn.jsonl > $OUT/attn.txt 2>&1; echo rc $?
grep -E "FAIL|B8 x S512|B8xS512|8x512" $OUT/attn.txt | head -60; tail -5 $OUT/attn.txt
