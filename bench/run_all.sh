#!/usr/bin/env bash
# Every bench program of one or more build trees, one after another, each JSON line tagged with
# the tree it came from, so that a native and an x86-64-v3 build are measured in one sitting:
#   bench/run_all.sh BUILD_DIR [BUILD_DIR...] > results.jsonl
# For example, with a second tree configured as
#   cmake -S . -B build-v3 -DCMAKE_BUILD_TYPE=Release -DTESSEL_MARCH=x86-64-v3 -DTESSEL_BUILD_TESTS=OFF
#   cmake --build build-v3 -j"$(nproc)"
# run `bench/run_all.sh build build-v3`.
# Each line gains "build" (the folder given), "march" (read from the tree's CMake cache),
# "omp_wait_policy" and "load_average" (the 1-minute load when the program started: a bench on a
# busy machine says so). Progress goes to stderr. The benches that need PyTorch peers run them
# themselves (bench/peer.hpp); without python3-torch their lines say the peer was skipped.
#   TESSEL_BENCH_SKIP  space-separated bench names to leave out (e.g. "dsc_bench unseggnet_bench")
set -euo pipefail
if [[ $# -lt 1 || $1 == -h || $1 == --help ]]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit $(( $# < 1 ))
fi
benches=(conv_bench conv_engines_bench slic_bench maxflow_bench metrics_bench methods_bench grapl_bench dsc_bench
         unseggnet_bench)
skip=" ${TESSEL_BENCH_SKIP:-} "
for build in "$@"; do
  [[ -d $build/bench ]] || { echo "run_all.sh: '$build' has no bench/ folder (not a tessel build tree?)" >&2; exit 2; }
done
for build in "$@"; do
  march=$(sed -n 's/^TESSEL_MARCH:STRING=//p' "$build/CMakeCache.txt" 2>/dev/null || true)
  for b in "${benches[@]}"; do
    [[ $skip == *" $b "* ]] && continue
    exe=$build/bench/$b
    if [[ ! -x $exe ]]; then
      echo "run_all.sh: $exe was not built; skipped" >&2
      continue
    fi
    load=$(cut -d' ' -f1 /proc/loadavg)
    echo "run_all.sh: $(date -u +%H:%M:%S) $exe (load $load)" >&2
    extra=$(printf ',"build":"%s","march":"%s","load_average":%s' "$build" "${march:-default}" "$load")
    policy=$(printf ',"omp_wait_policy":"%s"' "${OMP_WAIT_POLICY:-default}")
    # Only the JSON lines are tagged (keys a bench already prints are not repeated); anything
    # else the bench prints goes to stderr.
    "$exe" | while IFS= read -r line; do
      if [[ $line == \{*\} ]]; then
        tags=$extra
        [[ $line == *'"omp_wait_policy":'* ]] || tags+=$policy
        printf '%s%s}\n' "${line%\}}" "$tags"
      else
        printf '%s\n' "$line" >&2
      fi
    done
  done
done
