#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the file-facing tests (docs/reliability.md):
# g++ with -fsanitize=address,undefined, every UBSan report fatal, leak detection on. Configures
# build-asan/ (warnings as errors), builds only what it runs, and runs through ctest:
#   io                    test_io: every reader and writer, the bad-input corpus, PIL conformance
#                         (when the BSDS500 data is present), model files and safetensors
#   metrics (subset)      the dataset readers (data: ...) and the one-to-one matching (hungarian: ...)
#   cli.corpus_slic, cli.corpus_felzenszwalb, cli.corpus_evaluate
#                         the bad-input corpus through an instrumented tessel-segment and tessel-evaluate
# Any sanitizer report fails the test that produced it, so the script fails.
#   tests/sanitize/run.sh        (TESSEL_ASAN_BUILD_DIR: build folder, default build-asan; TESSEL_ASAN_JOBS: -j)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${TESSEL_ASAN_BUILD_DIR:-$here/build-asan}
jobs=${TESSEL_ASAN_JOBS:-$(nproc)}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# -O1 -g1: line numbers in reports at a fraction of -O2 -g's compile time; no -march, so the
# instrumented code is the portable one.
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=g++ -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g1" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DTESSEL_WERROR=ON \
  -DTESSEL_MARCH=OFF -DTESSEL_BUILD_BENCH=OFF -DTESSEL_BUILD_PYTHON=OFF -DTESSEL_ENABLE_CUDA=OFF >/dev/null
cmake --build "$build" -j "$jobs" --target test_io test_metrics tessel-segment tessel-evaluate tessel_make_bad_inputs >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# test_metrics: only the cases that read files or bound work on hostile sizes.
ctest --test-dir "$build" --output-on-failure -R '^(io|cli\.corpus_(slic|felzenszwalb|evaluate))$'
ASAN_OPTIONS=$ASAN_OPTIONS "$build/tests/test_metrics" --test-case='data:*,hungarian:*'
