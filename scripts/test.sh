#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test. Used by CI (.ci/run).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${GPTBENCH_BUILD_DIR:-$here/build}
bash "$here/scripts/setup.sh"
export GPTBENCH_SHARED_DIR=${GPTBENCH_SHARED_DIR:-$(cd "$here/.." && pwd)/shared}
# One test at a time: the heavy tests already use both cores through the BLAS.
ctest --test-dir "$build_dir" --output-on-failure --timeout 1500 "$@"
