#!/usr/bin/env bash
# Session 12, call 7: the LayerNorm-folded product's lab with three stacked consumer warpgroups (192 x 192 tiles,
# v8-v10), and Nsight Compute's stall reasons (real clocks) for v1 and v8 on the 4096-row QKV.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 300 $w/layernorm_folded_lab --json $OUT/labs.jsonl > $OUT/layernorm_folded_lab.txt 2>&1; echo "layernorm_folded_lab rc $?"
grep -E " v(1|8|9|10) |PASS \(|FAIL" $OUT/layernorm_folded_lab.txt | sed 's/ | cold.*| err/ | err/'
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
M="gpu__time_duration.sum,lts__t_bytes.sum.per_second,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum.per_second,regex:smsp__average_warps_issue_stalled_.*_per_issue_active.ratio"
for v in 1 8; do
  timeout 100 $NCU --clock-control none -k regex:folded --launch-count 1 --metrics "$M" $w/layernorm_folded_lab --version $v --shape qkv:4096 > $OUT/ncu-v$v.txt 2>&1
  echo "== ncu v$v rc $?"; grep -E "duration|lts__t_bytes|hmma|wavefronts|stalled_(long_scoreboard|barrier|wait|gmma|mio|lg_throttle|math|short|selected)" $OUT/ncu-v$v.txt | sed 's/  */ /g'
done
