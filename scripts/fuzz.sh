#!/usr/bin/env bash
# Fuzzing that searches: builds every fuzz target (fuzz/fuzz_*.cpp) with clang, libFuzzer, AddressSanitizer
# and UndefinedBehaviorSanitizer in build-fuzz/, replays each target's committed corpus (fuzz/corpus/<name>/),
# then lets libFuzzer search for FUZZ_SECONDS per target. Whatever it finds (crash-*, leak-*, timeout-*,
# oom-*) is copied into fuzz/corpus/<name>/ as found-<kind>-<hash>, so that the fix is committed together
# with its reproducer, which every ctest run then replays.
#
#   scripts/fuzz.sh                     every target, 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh fuzz_safetensors
#   FUZZ_MERGE=1 scripts/fuzz.sh        also fold inputs that add coverage into the committed corpus
#
# Targets fuzz side by side, one per core (FUZZ_PARALLEL, default nproc): each gets its FUZZ_SECONDS of one
# core, and CI waits seconds x targets / cores.
#
# Environment: FUZZ_SECONDS (per target, default 60), FUZZ_PARALLEL (targets at once, default nproc),
# FUZZ_JOBS (parallel fuzzing processes per target, default 1), FUZZ_MERGE (0/1), CXX (default clang++-14, else clang++). Needs Debian's clang with its
# libFuzzer runtime (clang-14, libclang-rt-14-dev or the clang package); the fuzz build compiles only
# core + io and the policies' JSON readers (nlohmann-json, libpng), not the engine.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
merge=${FUZZ_MERGE:-0}
cxx=${CXX:-$(command -v clang++-14 || command -v clang++ || true)}
[ -n "$cxx" ] || { echo "fuzz.sh: clang++ not found (apt-get install clang-14)" >&2; exit 1; }

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in fuzz/fuzz_*.cpp; do targets+=("$(basename "$src" .cpp)"); done
fi

cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DAMSKV_FUZZ=ON -DAMSKV_SANITIZE=ON -DAMSKV_NATIVE=OFF -DAMSKV_TESTS=OFF -DAMSKV_BENCH=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]}"

# Leaks are bugs too; a crash stops a run at once so its input is kept.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# One target: replay, search, keep what it found. Its lines go to build-fuzz/<target>.summary, printed when
# it is done so that targets running side by side do not interleave.
fuzz_target() {
  local target=$1
  rm -f "build-fuzz/$target.failed"
  local name corpus work artifacts bin log parallel kind hash found
  name=${target#fuzz_}
  corpus=fuzz/corpus/$name
  work=build-fuzz/corpus/$name        # what this run discovers; kept between runs, not committed
  artifacts=build-fuzz/artifacts/$name
  mkdir -p "$corpus" "$work" "$artifacts"
  bin=build-fuzz/fuzz/$target
  echo "== $target: replaying $corpus"
  if ! "$bin" -runs=0 "$corpus" >"build-fuzz/$target.replay.log" 2>&1; then
    touch "build-fuzz/$target.failed"
    echo "   a committed input fails; see build-fuzz/$target.replay.log"
  fi
  echo "== $target: fuzzing for ${seconds}s"
  log=build-fuzz/$target.log
  # -timeout: an input that takes 10 s is a bug (quadratic work), not patience; -rss_limit_mb: loading any
  # input may take max(64 MiB, 4 x its size), so 2 GB is a finding.
  parallel=()
  [ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")  # libFuzzer then logs to fuzz-N.log here
  if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 "${parallel[@]}" \
      -artifact_prefix="$artifacts/" -print_final_stats=1 "$work" "$corpus" >"$log" 2>&1; then
    touch "build-fuzz/$target.failed"
    echo "   $target found something; see $log"
  fi
  grep -E "stat::number_of_executed_units|Done [0-9]+ runs|cov: " "$log" | tail -n 2 || true
  for found in "$artifacts"/*; do
    [ -f "$found" ] || continue
    kind=$(basename "$found" | cut -d- -f1)
    hash=$(sha1sum "$found" | cut -c1-16)
    cp "$found" "$corpus/found-$kind-$hash"
    echo "   kept $corpus/found-$kind-$hash"
    rm "$found"
  done
  if [ "$merge" = 1 ]; then
    "$bin" -merge=1 "$corpus" "$work" >/dev/null 2>&1 || true
  fi
}

parallel_targets=${FUZZ_PARALLEL:-$(nproc)}
for target in "${targets[@]}"; do
  fuzz_target "$target" >"build-fuzz/$target.summary" 2>&1 &
  while [ "$(jobs -rp | wc -l)" -ge "$parallel_targets" ]; do wait -n || true; done
done
wait
status=0
for target in "${targets[@]}"; do
  cat "build-fuzz/$target.summary"
  [ ! -e "build-fuzz/$target.failed" ] || status=1
done
exit $status
