#!/usr/bin/env bash
# The main job: installs what is missing, builds, then runs `gptbench run` — with no arguments the smoke study
# (configs/smoke.yaml) on the bundled default model, gpt2-tiny-wt2 from ../shared. Arguments go to `gptbench run`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${GPTBENCH_BUILD_DIR:-$here/build}
bash "$here/scripts/setup.sh" >&2
export GPTBENCH_SHARED_DIR=${GPTBENCH_SHARED_DIR:-$(cd "$here/.." && pwd)/shared}
cd "$here"
exec "$build_dir/apps/gptbench" run "$@"
