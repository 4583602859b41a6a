#!/usr/bin/env bash
# One device call on the GPU machine: build natively (CUDA on, plots off), run the GPU tests (operation
# conformance against the CPU, the golden cases on the GPU), then the benchmark grid. Everything it
# measures lands under $OUT (or out/gpu): gpu.txt, build.log, tests.log, bench.json, bench.md.
#
#   GPU_TEST_FILTER   gtest filter for the test step (default: the GPU suites; "-" skips the tests)
#   BENCH_ARGS        arguments of `amskv bench` (default: the standard grid; "-" skips the grid)
#   EVAL_ARGS         arguments of `amskv eval` to run after the grid (default "-": none); its table, JSON
#                     and log land in $OUT/eval.{md,json,log} (plot them here with `amskv eval --replot`)
#   AMSKV_GOLDEN_DIR  the full golden set, when carried (the bundled mini case runs regardless)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out/gpu}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
start=$(date +%s)
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DAMSKV_BENCH=OFF -DAMSKV_PLOTS=OFF \
  >"$out/configure.log" 2>&1 || { tail -40 "$out/configure.log"; exit 1; }
cmake --build build-gpu -j"$(nproc)" >"$out/build.log" 2>&1 || { grep -E "error" -A4 "$out/build.log" | head -120; exit 1; }
echo "built in $(( $(date +%s) - start )) s"

filter=${GPU_TEST_FILTER:-"*BackendOps*:*GpuGolden*"}
if [ "$filter" != "-" ]; then
  build-gpu/tests/amskv_tests --gtest_filter="$filter" >"$out/tests.log" 2>&1
  status=$?
  grep -E "^\[  FAILED|Failure|Expected|actual|Which is|error" "$out/tests.log" | head -150
  grep -E "^\[  (PASSED|FAILED) " "$out/tests.log" | head -5
  echo "tests exit status $status ($(( $(date +%s) - start )) s so far)"
fi

bench=${BENCH_ARGS:-"--shapes d16,d30 --batches 1,64,128 --policies full,ams --reps 3"}
if [ "$bench" != "-" ]; then
  # shellcheck disable=SC2086
  build-gpu/amskv bench --device cuda $bench --json "$out/bench.json" 2>"$out/bench.log" | tee "$out/bench.md"
  tail -5 "$out/bench.log"
fi
eval_args=${EVAL_ARGS:-"-"}
if [ "$eval_args" != "-" ]; then
  # shellcheck disable=SC2086
  build-gpu/amskv eval --device cuda $eval_args --json "$out/eval.json" --markdown "$out/eval.md" \
    >"$out/eval.log" 2>&1
  echo "eval exit status $? ($(( $(date +%s) - start )) s so far)"
  tail -30 "$out/eval.log"
fi
echo "gpu_check done in $(( $(date +%s) - start )) s"
