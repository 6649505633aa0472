#!/usr/bin/env bash
# Session 9, call 4: what bounds the LM head at 128 rows — the read floor of W, Nsight Compute on the fused kernel
# (v1) and on cuBLASLt's LM head (v0).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/cuda-engine-work; mkdir -p $w; tar -C $w -xJf .device-carry/cuda/bins.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
timeout 100 $w/bin/lm_head_lab --only 128 > $OUT/lm_head_lab_128.txt 2>&1; grep -E "alone|cold" $OUT/lm_head_lab_128.txt
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
echo "ncu: $NCU"
S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section LaunchStats"
timeout 150 $NCU --clock-control none $S -k regex:lm_head_summary --launch-skip 43 --launch-count 1 $w/bin/lm_head_lab --only 128 > $OUT/ncu-fused.txt 2>&1
grep -E "void|Duration|Throughput|DRAM|L2 Hit|Stall|Warp Cycles|Mem Busy|Max Bandwidth|Hit Rate" $OUT/ncu-fused.txt | head -40
timeout 150 $NCU --clock-control none $S -k regex:"nvjet|xmma|gemm|sm90" --launch-skip 40 --launch-count 1 $w/bin/lm_head_lab --only 128 > $OUT/ncu-cublaslt.txt 2>&1
grep -E "void|nvjet|Duration|Throughput|DRAM|L2 Hit|Stall|Warp Cycles|Mem Busy|Max Bandwidth|Hit Rate" $OUT/ncu-cublaslt.txt | head -40
