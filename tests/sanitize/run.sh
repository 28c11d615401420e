#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the file-facing tests (docs/reliability.md):
# g++ with -fsanitize=address,undefined, every UBSan report fatal, leak detection on. Configures
# build-asan/ (warnings as errors), builds only what it runs, and runs:
#   io                    test_io: every reader and writer, the bad-input corpus, PIL conformance
#                         (when the BSDS500 data is present), model files and safetensors
#   test_readers          the dataset-reader and one-to-one matching cases of the metrics area
#   cli.corpus_evaluate   the bad-input corpus through an instrumented tessel-evaluate
# With TESSEL_ASAN_SEGMENT=1 also cli.corpus_slic and cli.corpus_felzenszwalb through an
# instrumented tessel-segment, whose one translation unit (every method, two backends) takes about
# 5 CPU minutes to compile with the sanitizers, more than CI's budget for this step.
# Any sanitizer report fails the run.
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
targets=(test_io test_readers tessel-evaluate tessel_make_bad_inputs)
tests='io|cli\.corpus_evaluate'
if [[ "${TESSEL_ASAN_SEGMENT:-0}" == 1 ]]; then
  targets+=(tessel-segment)
  tests+='|cli\.corpus_(slic|felzenszwalb)'
fi
cmake --build "$build" -j "$jobs" --target "${targets[@]}" >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ctest --test-dir "$build" --output-on-failure -R "^($tests)\$"
"$build/tests/test_readers"
