#!/usr/bin/env bash
# Session 15, call 11: the lab after review: every sequence's new cache row cleared before the persistent run (only sequence 0's was), so the chain's-bits check covers all of them.
set -uo pipefail
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}; done
w=/tmp/s15lab; rm -rf $w; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 200 $w/decode_persistent_lab --json $OUT/labs.jsonl > $OUT/decode_persistent_lab.txt 2>&1; echo "lab rc $?"
grep -v "^check" $OUT/decode_persistent_lab.txt; grep -c "ok$" $OUT/decode_persistent_lab.txt
