#!/usr/bin/env bash
# Deep Superpixel Cut's multi-setting family (METHODS.md §7.2): one tessel-segment run per
# superpixel target M in {10, 20, 50, 100}, written as <id>_seg<t>.png (t = 0..3 in that order)
# so that tessel-evaluate takes ODS and OIS over the family.
#   bench/dsc_family.sh BUILD_DIR MODEL OUT_DIR IMAGE... [-- extra tessel-segment options]
# Example (the first 10 BSDS500 val images):
#   bench/dsc_family.sh build superae.tsl dsc-val $(ls ../shared/data/bsds500/val/*.jpg | head -10)
#   build/examples/tessel-evaluate ../shared/data/bsds500/val dsc-val -p bsr
set -euo pipefail
build=$1 model=$2 out=$3
shift 3
images=()
while [[ $# -gt 0 && $1 != -- ]]; do images+=("$1"); shift; done
[[ ${1:-} == -- ]] && shift
mkdir -p "$out"
t=0
for m in 10 20 50 100; do
  tmp="$out/.M$m"
  mkdir -p "$tmp"
  "$build/examples/tessel-segment" "${images[@]}" --method dsc --model "$model" --superpixel-count "$m" \
      --out "$tmp" --json "$out/run_M$m.json" --force -q "$@"
  for f in "$tmp"/*.png; do
    id=$(basename "$f" .png)
    mv -f "$f" "$out/${id}_seg$t.png"
  done
  rmdir "$tmp"
  t=$((t + 1))
done
