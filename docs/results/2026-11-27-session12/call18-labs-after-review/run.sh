#!/usr/bin/env bash
# Session 12, call 18: the labs after the review mend (lab_cublaslt.cuh's open_lt_lab / close_lt_lab, lab_common's
# checked_rows / json_number / version_shape_options, the folded kernels' shared pieces): every check of layernorm_folded_lab,
# residual_layernorm_lab, lm_head_lab --quick and gemm_large_lab --quick.
set -uo pipefail
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib:${LD_LIBRARY_PATH:-}
w=/tmp/lab; mkdir -p $w; tar -C $w -xJf .device-carry/lab/lab.tar.xz
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee $OUT/gpu.txt
for l in "layernorm_folded_lab" "residual_layernorm_lab" "lm_head_lab --quick" "gemm_large_lab --quick"; do
  n=${l%% *}
  timeout 120 $w/$l --json $OUT/labs.jsonl > $OUT/$n.txt 2>&1; echo "$n rc $? : $(tail -n 1 $OUT/$n.txt)"
done
grep -E " v(1|20|23|25) " $OUT/layernorm_folded_lab.txt | grep M4096 | sed 's/ | cold.*| err/ | err/' | cut -c1-150
python3 -c "
import json
for l in open('$OUT/labs.jsonl'): json.loads(l)
print('labs.jsonl: valid JSON')"
