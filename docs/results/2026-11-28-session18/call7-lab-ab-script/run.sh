#!/usr/bin/env bash
# Session 18, call 7: the new scripts/gpu/lab_ab.sh on its first GPU run, as an A/A test — two byte-identical builds
# of persistent_lab (HEAD's kernel; packed by `scripts/gpu/pack_lab_variants.sh build base
# base_again=-DGPTBENCH_AA_TWIN=1`, a macro nothing reads) alternating for 3 rounds: how far apart the same kernel
# lands in the A/B that this and the earlier sessions read their kernel changes from.
set -uo pipefail
OUT=$OUT ROUNDS=3 scripts/gpu/lab_ab.sh base base_again
