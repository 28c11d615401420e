#!/usr/bin/env bash
# Builds the libFuzzer targets with clang 14 (ASan + UBSan) in build-fuzz/, writes their seed
# corpora (tests/fuzz/make_seeds.cpp) and runs each for SECONDS (default 20) on one core, as many
# targets at a time as there are cores (the build uses every core too).
# Crashes are written to build-fuzz/findings/<target>/ and make the script fail.
#   tests/fuzz/run.sh [SECONDS]      (TESSEL_FUZZ_SEED: libFuzzer seed, default 1, so CI runs repeat)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
seconds=${1:-20}
build=${TESSEL_FUZZ_BUILD_DIR:-$here/build-fuzz}
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
  -DTESSEL_BUILD_FUZZERS=ON -DTESSEL_BUILD_TESTS=OFF -DTESSEL_BUILD_EXAMPLES=OFF -DTESSEL_BUILD_BENCH=OFF \
  -DTESSEL_ENABLE_CUDA=OFF >/dev/null
targets=(image label_png scribble dataset model_file safetensors)
cmake --build "$build" -j "$(nproc)" --target tessel_fuzz_seeds "${targets[@]/#/fuzz_}" >/dev/null
rm -rf "$build/seeds"
"$build/tests/fuzz/tessel_fuzz_seeds" "$build/seeds"
# One target per core at a time: the same budget per target in half the wall time on 2 cores.
jobs=$(nproc)
run_one() {
  local t=$1
  mkdir -p "$build/corpus/$t" "$build/findings/$t"
  # -rss_limit_mb: a reader must refuse a hostile size before allocating it; 2 GB is generous.
  if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$build/tests/fuzz/fuzz_$t" \
       -max_total_time="$seconds" -seed="${TESSEL_FUZZ_SEED:-1}" -rss_limit_mb=2048 -timeout=10 -max_len=65536 -print_final_stats=1 \
       -artifact_prefix="$build/findings/$t/" "$build/corpus/$t" "$build/seeds/$t" \
       >"$build/findings/$t.log" 2>&1; then
    echo "fuzz_$t: FAILED (see $build/findings/$t.log)" >&2
    tail -40 "$build/findings/$t.log" >&2
    touch "$build/findings/$t.failed"
    return 0
  fi
  echo "fuzz_$t: $(grep -E 'stat::number_of_executed_units' "$build/findings/$t.log" | awk '{print $2}') executions, no finding"
}
rm -f "$build"/findings/*.failed
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n; done
  run_one "$t" &
done
wait
status=0
for t in "${targets[@]}"; do [[ -e "$build/findings/$t.failed" ]] && status=1; done
exit $status
