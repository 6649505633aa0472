#!/usr/bin/env bash
# Session 17, call 7: after calls 4-6 (the products' k loops: ~3.1 us with their 48 MMAs a warpgroup, ~1.3 without;
# not the shared-memory bytes, not the groups in flight) — is it one wgmma's latency, paid 48 times? The new
# lab/cuda/wgmma_chain_lab.cu times 48 wgmma m64n32k16 / m64n64k16 from shared memory alone, on 1 / 2 / 4
# independent accumulators, with the kernel's commit + wait_group 1 every 4 or one wait at the end, 1 and 2
# warpgroups, 1 block and 132 (one per SM). Call 5's accumulator chains were compiled with waits injected by ptxas
# (C7517 / C7519); this lab pins the accumulators' zeros before the chain and compiles without any.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
timeout 120 $w/wgmma_chain_lab --json $OUT/labs.jsonl > $OUT/wgmma_chain_lab.txt 2>&1; echo "lab rc $?"
cat $OUT/wgmma_chain_lab.txt
