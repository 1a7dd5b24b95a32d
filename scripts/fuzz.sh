#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 180), one after the
# other, on the nightly toolchain, and prints what each did. A crash stops
# the run and leaves its input under fuzz/artifacts/<target>/.
#   cargo install cargo-fuzz     # once
#   scripts/fuzz.sh [SECONDS]
# Sanitizer: none (the targets are safe Rust; a panic or a failed assertion
# is what they look for), which builds and runs several times faster.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-180}"
targets=(qr_payload text_parsers member_body)
cargo +nightly fuzz build -s none
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=()
  if [ -d "seeds/$t" ]; then seeds=("seeds/$t"); fi
  echo "==> $t for ${secs} s"
  # one fuzzing process: the machine has two cores
  cargo +nightly fuzz run -s none "$t" "corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$secs" -max_len=4096 -print_final_stats=1 2>&1 |
    grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb|==[0-9]+==|thread .* panicked|SUMMARY|Done [0-9]+ runs)" || true
  echo "corpus: $(ls "corpus/$t" | wc -l) inputs"
done
