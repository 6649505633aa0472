#!/usr/bin/env bash
# Builds variants of one kernel lab here (no GPU needed) and packs them for the GPU machine, where
# scripts/gpu/lab_ab.sh runs them side by side. A variant is the lab compiled from this tree with extra nvcc flags —
# keep an experiment behind a macro (#ifndef GPTBENCH_X / #define GPTBENCH_X 0) so that the baseline and the
# variants come from one tree and the experiment costs the engine nothing while it is off.
# Usage: scripts/gpu/pack_lab_variants.sh BUILD_DIR NAME[=FLAGS] ...
#   e.g. scripts/gpu/pack_lab_variants.sh build base fold=-DGPTBENCH_FOLD_LN2=1
# Environment: LAB (default persistent_lab), the lab's ninja target and the name of its source lab/cuda/$LAB.cu.
# Output: .device-carry/lab/lab.tar.xz holding $LAB.NAME for each variant (stripped); carry .device-carry/lab.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[[ $# -ge 2 ]] || { echo "usage: $0 BUILD_DIR NAME[=FLAGS] ..." >&2; exit 2; }
build=$(cd "$1" && pwd)
shift
lab=${LAB:-persistent_lab}
[[ -f $build/build.ninja ]] || { echo "$0: $build has no build.ninja (configure the build first)" >&2; exit 1; }
ninja -C "$build" "$lab" > /dev/null  # everything the lab links, up to date
compile=$(ninja -C "$build" -t commands "$lab" | grep -F "$lab.cu.o" | head -1)
link=$(ninja -C "$build" -t commands "$lab" | tail -1)
[[ -n $compile && $link == *" -o "* ]] || { echo "$0: no compile / link command for target $lab in $build" >&2; exit 1; }
binary=$(sed -E 's/.* -o ([^ ]+).*/\1/' <<<"$link")
stage=$(mktemp -d)
trap 'rm -rf "$stage"; touch "$root/lab/cuda/$lab.cu"' EXIT  # the build dir's object is a variant's: rebuild next time
for v in "$@"; do
  name=${v%%=*}
  flags=
  [[ $v == *=* ]] && flags=${v#*=}
  [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || { echo "$0: bad variant name '$name'" >&2; exit 2; }
  echo "== $lab.$name ${flags:-(no extra flags)}"
  (cd "$build" && eval "${compile/ -c / $flags -c }" && eval "$link")
  strip -o "$stage/$lab.$name" "$build/$binary"
done
mkdir -p "$root/.device-carry/lab"
tar -C "$stage" -cJf "$root/.device-carry/lab/lab.tar.xz" .
du -h "$root/.device-carry/lab/lab.tar.xz"
