# shellcheck shell=bash
# Sourced by the scripts that run on the GPU machine (check_cuda_engine.sh, prefill_variants.sh, run_study.sh,
# profile_cuda_engine.sh, lab_ab.sh): how they find the machine's CUDA libraries and the carried ones.

# cuda_library_path: the CUDA toolkit's library folders on LD_LIBRARY_PATH (the carried binaries link the
# machine's libcudart / libcublasLt).
cuda_library_path() {
  local d
  for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
    [[ -d $d ]] && export LD_LIBRARY_PATH=$d:${LD_LIBRARY_PATH:-}
  done
  return 0
}

# lib_wrapper WRAPPER LIBDIR PROGRAM: a script that runs PROGRAM with LIBDIR first on its library path, so that
# the carried Debian libraries serve our programs only and not the machine's Python. A program rather than a
# function, so that timeout can run it.
lib_wrapper() {
  printf '#!/bin/sh\nLD_LIBRARY_PATH="%s:${LD_LIBRARY_PATH:-}" exec "%s" "$@"\n' "$2" "$3" > "$1"
  chmod +x "$1"
}

# carried_libdir WORK [BUNDLE]: the folder of the Debian libraries (fmt, OpenBLAS, ...) the carried CUDA binaries
# link: WORK/lib, packed beside them by pack_cuda_carry.sh, else the gptbench bundle's lib/ (pack_cuda_carry.sh
# with WITH_BUNDLE=1 packs none, so that binaries and bundle fit one call). Prints nothing when neither exists.
carried_libdir() {
  if [[ -d $1/lib ]]; then
    echo "$1/lib"
  elif [[ -n ${2:-} && -d $2/lib ]]; then
    echo "$2/lib"
  fi
  return 0
}
