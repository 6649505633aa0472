#!/usr/bin/env bash
# Session 12, call 14: the ping-pong kernel after the turn-taking fix (call 13 hung at the first shape with several
# tiles a block: a warpgroup waited on the ring a whole tile ahead, which phase parity cannot tell apart), each run
# under its own time limit.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
for s in odd:200 qkv:4096 fc:4096 qkv:1024 fc:1024; do for v in 20 23 24 25; do
  timeout 20 $w/layernorm_folded_lab --version $v --shape $s --json $OUT/labs.jsonl >> $OUT/layernorm_folded_lab.txt 2>&1
  rc=$?; [[ $rc -ne 0 ]] && echo "v$v $s rc $rc"
done; done
grep -E " v[0-9]+ " $OUT/layernorm_folded_lab.txt | sed 's/ | cold.*| err/ | err/' | cut -c1-160
