#!/usr/bin/env bash
# tessel set-up for a fresh Debian 12 machine: installs the dependencies from apt, configures and
# builds tessel (tests, examples, benches) in ./build, then runs the main example on its built-in
# demo image. Re-running is safe: apt skips what is installed and the build is incremental.
#   TESSEL_BUILD_DIR   build folder (default: build)
#   TESSEL_CMAKE_ARGS  extra arguments for the CMake configure step
#   TESSEL_SKIP_APT=1  skip the apt step (dependencies already present)
#   TESSEL_SKIP_PEERS=1  do not install the benchmark peers OpenCV and Boost.Graph (CI: the benches
#                      build without their peer comparisons; OpenCV alone is most of apt's time)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${TESSEL_BUILD_DIR:-build}
cd "$here"

packages=(
  build-essential cmake pkg-config
  libeigen3-dev libxtensor-dev xtl-dev libxtensor-blas-dev libopenblas-dev
  doctest-dev libjpeg62-turbo-dev libpng-dev libstb-dev libcli11-dev nlohmann-json3-dev libfmt-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev   # the libFuzzer targets of tests/fuzz (CI)
)
# Peers of bench/slic_bench and bench/maxflow_bench, used when present.
[[ "${TESSEL_SKIP_PEERS:-0}" == 1 ]] || packages+=(libopencv-contrib-dev libboost-graph-dev)
# The Python module (python/, docs/python.md) and its pytest suite; scikit-image and scikit-learn
# for the equality tests (they skip with a message without them).
packages+=(pybind11-dev python3-dev python3-numpy python3-pytest python3-skimage python3-sklearn)
if [[ "${TESSEL_SKIP_APT:-0}" != 1 ]]; then
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    echo "tessel setup: installing ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # Thrust: the CUDA toolkit's copy is preferred; without a toolkit, Debian's libthrust-dev.
  if [[ ! -e /usr/local/cuda/include/cccl/thrust/version.h && ! -e /usr/local/cuda/include/thrust/version.h ]] \
     && ! dpkg-query -W -f='${Status}' libthrust-dev 2>/dev/null | grep -q 'install ok installed'; then
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq libthrust-dev >/dev/null
  fi
fi
# nvcc is usually not on PATH on a fresh machine; CMake finds it through CUDACXX.
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi

cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${TESSEL_CMAKE_ARGS:-}
cmake --build "$build" -j "$(nproc)"

echo "tessel setup: running the main example on its built-in demo image"
if [[ -x "$build/examples/tessel-segment" ]]; then
  # 100 training iterations keep the demo under a minute; drop --max-iter for the method's default 1000.
  "$build/examples/tessel-segment" --max-iter 100 --out "$build/demo_labels.png" --overlay "$build/demo_overlay.png" \
    --json "$build/demo_report.json" --force
  echo "tessel setup: wrote $build/demo_labels.png, $build/demo_overlay.png and $build/demo_report.json"
else
  echo "tessel setup: tessel-segment was not built" >&2
  exit 1
fi
