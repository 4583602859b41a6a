#!/usr/bin/env bash
# Builds and runs every test: a release build (with the CUDA backend when CUDA is installed: compiled and
# linked; its GPU tests run only where a GPU is), then the same tests under AddressSanitizer and
# UndefinedBehaviorSanitizer (UBSan on the engine's libraries; the fuzz corpora are replayed in both), then
# each fuzz target searches for FUZZ_SECONDS (default 30, which keeps CI near 26 minutes on two cores) in
# a clang/libFuzzer build.
# Golden data: the bundled mini case (tests/fixtures/golden) always; the full reference set in addition when
# ../shared/golden is beside the checkout or $AMSKV_GOLDEN_DIR names it.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

shared_golden=${AMSKV_GOLDEN_DIR:-../shared/golden}
if [ -f "$shared_golden/tiny/golden.safetensors" ]; then
  golden_sets="bundled (mini) + full reference set from $shared_golden (tiny, std256, saln288)"
else
  golden_sets="bundled (mini) only: no full reference set at $shared_golden, so its cases are skipped"
fi
echo "golden sets: $golden_sets"

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs"
# Tests run one at a time: each already uses every core (OpenMP + BLAS), and two at once make OpenMP
# barriers wait on descheduled threads (25x slower here).
ctest --test-dir build --output-on-failure

# -O1 -g1 (line tables, no variables): sanitizer reports keep their file:line stacks, and the build takes half
# the time of -O2 -g (cmd_eval.cpp alone: 72 s against 144 s on this 2-core machine), which keeps CI within
# its budget; the tests' heavy arithmetic is in BLAS, which is not instrumented either way. UBSan covers the
# engine's libraries (src/), ASan everything (CMakeLists.txt says why).
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DAMSKV_SANITIZE=ON -DAMSKV_BENCH=OFF -DAMSKV_CUDA=OFF
cmake --build build-asan -j "$jobs"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build-asan --output-on-failure

FUZZ_SECONDS=${FUZZ_SECONDS:-30} bash scripts/fuzz.sh
echo "all tests passed (release and ASan/UBSan, fuzz corpora replayed), fuzzers found nothing in" \
  "${FUZZ_SECONDS:-30} s each; golden sets: $golden_sets"
