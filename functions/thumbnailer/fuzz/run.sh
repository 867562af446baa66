#!/usr/bin/env bash
# The thumbnailer's fuzz targets (`make fuzz-thumbnails`, and a short run in `make test`):
#   run.sh SECONDS_PER_TARGET [SEEDS_DIR]
# cargo-fuzz on stable (-s none: AddressSanitizer needs nightly; Rust's own bounds checks and
# the targets' counting allocator stand in for it), seeded with the test fixtures and SEEDS_DIR
# (bench/make_corpus.py --small: every accepted kind). A crash, a run over 1 s or an
# allocation past the 1/8-scale bound stops it with the input in artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:?seconds per target}
seeds=${2:-}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz@0.13.2
cargo fuzz build -s none --release
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in ${FUZZ_TARGETS:-jpeg_dc render}; do
  mkdir -p "corpus/$target"
  if ! cargo fuzz run -s none --release "$target" "corpus/$target" ../tests/fixtures ${seeds:+"$seeds"} -- \
    -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 -max_len=1048576 -seed=20261202 \
    -print_final_stats=1 > "$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz target $target failed (input in functions/thumbnailer/fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  # libFuzzer's progress lines are many; the totals are what matter.
  echo "$target: $(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}') executions in ${seconds} s, $(grep -E '^stat::new_units_added' "$log" | awk '{print $2}') new units"
done
