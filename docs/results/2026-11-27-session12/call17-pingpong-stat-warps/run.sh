#!/usr/bin/env bash
# Session 12, call 17: the ping-pong kernel with the row statistics from the producer warpgroup's idle warps (v26, v27) against v20, v23, v25.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
for s in odd:200 qkv:4096 fc:4096 qkv:1024 fc:1024; do for v in 20 23 25 26 27; do
  timeout 20 $w/layernorm_folded_lab --version $v --shape $s --json $OUT/labs.jsonl >> $OUT/layernorm_folded_lab.txt 2>&1
  rc=$?; [[ $rc -ne 0 ]] && echo "v$v $s rc $rc"
done; done
grep -E " v[0-9]+ " $OUT/layernorm_folded_lab.txt | sed 's/ | cold.*| err/ | err/' | cut -c1-160
