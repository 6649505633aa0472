#!/usr/bin/env bash
# Session 12, call 4: Nsight Compute on the LayerNorm-folded product (v1, QKV at 4096 rows) and on cuBLASLt's
# candidates for the same product: what limits the hand-written main loop.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
M=gpu__time_duration.sum,sm__cycles_elapsed.avg.per_second,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,lts__t_bytes.sum.per_second,lts__t_sectors_srcunit_tex_op_read.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,smsp__inst_executed.sum,launch__grid_size,launch__block_size,launch__cluster_dim_x,launch__cluster_dim_y,sm__warps_active.avg.pct_of_peak_sustained_active
timeout 200 $NCU -k regex:folded --launch-count 1 --section SpeedOfLight --section WarpStateStats --section MemoryWorkloadAnalysis --metrics $M $w/layernorm_folded_lab --version 1 --shape qkv:4096 > $OUT/ncu-folded-v1.txt 2>&1; echo "ncu folded rc $?"
timeout 200 $NCU -k regex:"sm90|gemm|xmma" --launch-count 9 --metrics $M $w/layernorm_folded_lab --version 1 --shape qkv:4096 > $OUT/ncu-cublaslt.txt 2>&1; echo "ncu cublaslt rc $?"
grep -v "^==PROF==" $OUT/ncu-folded-v1.txt | grep -i "duration\|throughput\|pct\|bytes\|stall\|Elapsed\|Issue\|Warp Cycles\|folded\|per_second\|sectors\|wavefronts\|inst_executed" | head -60
grep -E "^  [a-zA-Z_].*\(|duration|hmma|lts__t_bytes|cluster_dim|grid_size|elapsed.avg" $OUT/ncu-cublaslt.txt | head -90
