#!/bin/bash
# usage: audit_exp.sh tag n [load]
cd /work/main
export GPTBENCH_SHARED_DIR=/work/shared
for i in $(seq 1 $2); do
  if [ "$3" = load ]; then ( while true; do timeout 3 sh -c 'while :; do :; done'; sleep 2; done ) & lp=$!; fi
  build/apps/gptbench run -o /tmp/aud/$1-$i > /tmp/aud/$1-$i.log 2>&1; echo "$1-$i rc=$?"
  if [ "$3" = load ]; then kill $lp; pkill -f "while :; do :; done"; fi
done
