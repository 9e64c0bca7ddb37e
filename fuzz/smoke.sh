#!/usr/bin/env bash
# Smoke run of every fuzz target on the kept corpus (~15 s each by default, more where replaying
# the corpus takes longer); exits non-zero
# on any crash, panic, sanitizer report, leak or timeout. For `.ci/run`:
#
#     fuzz/smoke.sh
#
# FUZZ_SMOKE_SECS sets the seconds per target. New inputs go to a temporary directory: the
# kept corpus (fuzz/corpus/<target>) is read, never written. A crash leaves its reproducer in
# fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs="${FUZZ_SMOKE_SECS:-15}"

# cargo-fuzz passes nightly flags (-Zsanitizer=address); the stable compiler accepts them with
# RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version

# Cargo caches rustc's answers per compiler, not per environment: a build once tried without
# RUSTC_BOOTSTRAP leaves a cached "-Z is nightly-only" failure that breaks every later build.
if [ -f target/.rustc_info.json ] && grep -q '"success":false' target/.rustc_info.json; then
  rm -f target/.rustc_info.json
fi

# An unoptimized build (still with the address sanitizer, debug assertions and coverage): on a
# 2-core machine it builds in under half the time of cargo-fuzz's optimized build, and replays
# the kept corpus in a minute or two per target at most, which is what a smoke run is for. Long
# fuzzing runs use `cargo fuzz run TARGET` (optimized). `run` gets the same flags, or it would
# build everything again.
flags=(--dev)
echo "== build"
cargo fuzz build "${flags[@]}"

scratch="$(mktemp -d)"
cleanup() {
  rm -rf "$scratch"
  # stored_records' SQLite files (named by process id) of runs that are over.
  local f pid
  for f in /dev/shm/multifactor-fuzz-*; do
    [ -e "$f" ] || continue
    pid="${f#/dev/shm/multifactor-fuzz-}"
    pid="${pid%%.*}"
    [ -d "/proc/$pid" ] || rm -f "$f"
  done
}
trap cleanup EXIT
# One target's run; its output and exit status go to files in the scratch directory.
run_one() {
  local target=$1 extra=()
  mkdir -p "corpus/$target" "$scratch/$target"
  # stored_records' async SQLite keeps caches between inputs, which makes libFuzzer's leak check
  # (a heap scan after every new input) the bulk of its run time; it is not where leaks would be.
  [ "$target" = stored_records ] && extra=(-detect_leaks=0)
  cargo fuzz run "${flags[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
    -max_total_time="$secs" -timeout=30 -print_final_stats=1 "${extra[@]}" 2>"$scratch/$target.log"
  echo $? >"$scratch/$target.rc"
}
# Each run is one process on one core: as many at a time as there are cores (FUZZ_SMOKE_JOBS).
parallel="${FUZZ_SMOKE_JOBS:-$(nproc)}"
targets=$(cargo fuzz list)
for target in $targets; do
  while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n || true; done
  run_one "$target" &
done
wait
status=0
for target in $targets; do
  echo "== $target (${secs}s)"
  if [ "$(cat "$scratch/$target.rc" 2>/dev/null)" != 0 ]; then
    tail -n 60 "$scratch/$target.log"
    echo "FAIL: $target (reproducer in fuzz/artifacts/$target/)"
    status=1
  else
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$scratch/$target.log" || true
  fi
done
exit "$status"
