#!/usr/bin/env bash
# Remakes the README gallery: every method on tessel-segment's built-in demo image (generated in
# code, so no dataset image is involved), seed 0, boundary overlays as PNG.
#   bash docs/gallery/make_gallery.sh [build folder (default: build)]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
seg=${1:-build}/examples/tessel-segment
out=$here
run() {  # name, then tessel-segment options
  local name=$1; shift
  "$seg" --seed 0 -q --force --out "$out/.labels_$name.png" --overlay "$out/$name.png" --json "$out/.report_$name.json" "$@"
  rm -f "$out/.labels_$name.png" "$out/.report_$name.json"
  echo "wrote $out/$name.png"
}
run kim2020 --method kim2020 --max-iter 100
run kanezaki2018 --method kanezaki2018 --max-iter 100 --n-segments 1000
run azad2025 --method azad2025
run grapl --method grapl
run slic --method slic --n-segments 60
run felzenszwalb --method felzenszwalb --scale 200
