#!/usr/bin/env bash
# Session 22, call 1: where the wgmma attention kernel's time goes at B8 x S512 (the engine's default, lab v14:
# one consumer warpgroup, 2-slot ring, 4 blocks an SM). Nsight Compute's pipe utilisation, warp states, memory
# and occupancy sections for v14 at B8 x S512 and B1 x S1024 (many blocks against few long ones), its SASS, and
# the lab's wgmma versions timed on the big shapes. Only attention_lab was carried (.device-carry/lab/).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
lab=.device-carry/lab/attention_lab; w=/tmp/lab; mkdir -p $w
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
echo "== timing [$(date +%T)]"
for v in 14 16 18 19; do timeout 60 $lab --version $v --shape 8x512 --min-ms 30; done 2>&1 | grep -E 'half|FAIL' | tee $OUT/timing.txt
echo "== sass [$(date +%T)]"
cuobjdump -sass $lab > $w/sass.txt 2>&1; echo "rc $? lines $(wc -l < $w/sass.txt)"
gzip -c $w/sass.txt > $OUT/sass.txt.gz
for shape in 8x512 1x1024; do
  echo "== ncu $shape [$(date +%T)]"
  timeout 150 ncu --clock-control none -k regex:attention_wgmma -s 3 -c 1 --set full --import-source yes \
    -o $w/rep-$shape $lab --version 14 --shape $shape --min-ms 1 > $OUT/ncu_run_$shape.txt 2>&1; echo "rc $?"
  tail -3 $OUT/ncu_run_$shape.txt
  ncu --import $w/rep-$shape.ncu-rep --page details > $OUT/ncu_details_$shape.txt 2>&1
  ncu --import $w/rep-$shape.ncu-rep --page raw --csv > $w/raw.csv 2>&1; gzip -c $w/raw.csv > $OUT/ncu_raw_$shape.csv.gz
  ncu --import $w/rep-$shape.ncu-rep --page source --csv --print-source sass > $w/src.csv 2>&1; gzip -c $w/src.csv > $OUT/ncu_source_$shape.csv.gz
  grep -E 'Duration|Pipe|Issue Slots|Executed Ipc|Warp Cycles|Active Warps|Achieved Occ|Theoretical Occ|Block Limit|Registers|Shared Memory Throughput|L1/TEX Hit|Mem Busy|Max Bandwidth|SM Busy|Compute \(SM\)|One or More|No Eligible|Stall' $OUT/ncu_details_$shape.txt | head -50
done
echo "== done [$(date +%T)]"
