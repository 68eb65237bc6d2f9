#!/usr/bin/env bash
# `make fuzz`: each cargo-fuzz target of fuzz/ in turn, one job, niced, for
# FUZZ_SECS seconds (default 300) or FUZZ_RUNS executions (0: no limit),
# whichever ends first; then a table of executions and crashes per target.
# A crash's input is in fuzz/artifacts/<target>/, the log beside it. Not
# part of `make test`: it needs the nightly toolchain.
set -uo pipefail
cd "$(dirname "$0")/.."

SECS=${FUZZ_SECS:-300}
RUNS=${FUZZ_RUNS:-0}
TARGETS=${FUZZ_TARGETS:-signature_headers extract verify lambda_request}

if ! cargo fuzz --version >/dev/null 2>&1; then
  nice -n 19 cargo install cargo-fuzz --locked || exit 1
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: cargo-fuzz needs the nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi

nice -n 19 cargo +nightly fuzz build --fuzz-dir fuzz || exit 1

runs_flag=()
if [ "$RUNS" != 0 ]; then runs_flag=(-runs="$RUNS"); fi
rows=()
failed=0
for t in $TARGETS; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  seeds=()
  if [ -d "fuzz/seeds/$t" ]; then seeds=("fuzz/seeds/$t"); fi
  log="fuzz/artifacts/$t/fuzz.log"
  start=$(date +%s)
  nice -n 19 cargo +nightly fuzz run --fuzz-dir fuzz --jobs 1 "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$SECS" "${runs_flag[@]}" -print_final_stats=1 >"$log" 2>&1
  status=$?
  secs=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  crashes=$(find "fuzz/artifacts/$t" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  if [ "$status" != 0 ] || [ "$crashes" != 0 ]; then failed=1; fi
  rows+=("$(printf '%-18s %14s %8s %7ss  exit %s' "$t" "${execs:-?}" "$crashes" "$secs" "$status")")
done

printf '%-18s %14s %8s %8s\n' target executions crashes time
printf '%s\n' "${rows[@]}"
exit "$failed"
