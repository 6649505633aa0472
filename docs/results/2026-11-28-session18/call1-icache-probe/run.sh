#!/usr/bin/env bash
# Session 18, call 1: is the persistent prefill kernel waiting for its instructions? Its fp16 body is 93,952 bytes
# of SASS (5,872 instructions, readelf of the cubin here), and every phase's code runs once a layer, after the six
# other phases' code ran. The baseline trace (persistent_lab --trace-only), then Nsight Compute's warp states for one
# forward (stall "no instruction" against the rest) and the per-instruction stall samples of the same kernel, and the
# kernel's SASS (to map the samples to phases).
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv | tee $OUT/gpu.txt
echo "== trace [$(date +%T)]"
timeout 60 $w/persistent_lab --trace-only > $OUT/trace.txt 2>&1; echo "rc $?"
grep -E 'phases, us|QKV |proj |FC |mproj ' $OUT/trace.txt | head -12
echo "== sass [$(date +%T)]"
cuobjdump -sass -fun '_ZN8gptbench11cuda_engine7kernels22gpt2_layers_persistentI6__halfLi1EEEv14CUtensorMap_stS4_S4_NS1_14PersistentArgsIT_EE' \
  $w/persistent_lab > $w/sass.txt 2>&1; echo "rc $? lines $(wc -l < $w/sass.txt)"
gzip -c $w/sass.txt > $OUT/sass.txt.gz
echo "== ncu warp states [$(date +%T)]"
ncu_k='regex:gpt2_layers_persistent'
timeout 200 ncu --clock-control none -k "$ncu_k" -s 2 -c 1 --section WarpStateStats --section SchedulerStats \
  --section InstructionStats --section LaunchStats --section SourceCounters -o $w/rep $w/persistent_lab --trace-only \
  > $OUT/ncu_run.txt 2>&1; echo "rc $?"
tail -5 $OUT/ncu_run.txt
ncu --import $w/rep.ncu-rep --page details > $OUT/ncu_details.txt 2>&1
grep -i -E 'stall|warp cycles|issued|no instruction|branch|Executed Ipc|Duration' $OUT/ncu_details.txt | head -60
ncu --import $w/rep.ncu-rep --page raw --csv > $w/raw.csv 2>&1
python3 - $w/raw.csv > $OUT/stall_metrics.txt <<'PY'
import csv,sys
rows=list(csv.reader(open(sys.argv[1])))
if len(rows) >= 3:
    h, u, v = rows[0], rows[1], rows[2]
    for name, unit, val in zip(h, u, v):
        if 'stall' in name or 'inst_executed' in name or 'cycles_active' in name:
            print(name, unit, val)
PY
grep -E 'no_instruction|stalled_barrier|long_scoreboard|wait|membar|sleeping|math|selected' $OUT/stall_metrics.txt | head -40
ncu --import $w/rep.ncu-rep --page source --csv --print-source sass > $w/source.csv 2>&1; echo "source rc $? $(wc -l < $w/source.csv)"
gzip -c $w/source.csv > $OUT/source.csv.gz
echo "== done [$(date +%T)]"
