#!/usr/bin/env bash
# The one command for a machine with a GPU (no network; torch, ninja, nvcc present):
# build for this GPU, run the tests on CUDA, compute-sanitizer, the benchmark; every log
# and a summary go to OUTDIR, the summary is printed last. Each step has a time budget
# (about 7.5 minutes in all). On the lent device machine, whose $OUT takes back at most
# 8 files, run it on a scratch folder and tar that folder into $OUT.
set -uo pipefail
OUT=${1:?usage: benchmarks/gpu_check.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
SUMMARY="$OUT/summary.md"
declare -a STEPS

step() {  # step NAME BUDGET_S LOG COMMAND...
  local name=$1 budget=$2 log=$3; shift 3
  local start=$SECONDS
  echo "== $name (budget ${budget}s)"
  timeout "$budget" "$@" >"$OUT/$log" 2>&1
  local rc=$?
  local verdict=ok
  [ $rc -eq 124 ] && verdict="TIMED OUT" || { [ $rc -ne 0 ] && verdict="FAILED (rc $rc)"; }
  STEPS+=("| $name | $verdict | $((SECONDS - start)) s | $log |")
  echo "   $verdict in $((SECONDS - start)) s; log: $OUT/$log"
  return $rc
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
  nvcc --version | tail -n 2
} >"$OUT/env.txt" 2>&1

ARCH=$(python -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())" 2>/dev/null)
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$ARCH}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
step build 150 build.log env GRU_CUDA_FORCE_CUDA=1 python setup.py build_ext --inplace
# The NER example's tests need seqeval and pytorch-crf, which the GPU machine lacks (and
# CI runs them); everything else runs, on CUDA too.
step tests 120 tests.log python -m pytest -q -p no:cacheprovider tests -ra \
  --ignore-glob='tests/test_ner_*'
step memcheck 40 memcheck.log compute-sanitizer --tool memcheck --error-exitcode 1 \
  python benchmarks/sanitizer_case.py
step racecheck 40 racecheck.log compute-sanitizer --tool racecheck --error-exitcode 1 \
  python benchmarks/sanitizer_case.py
# torch.compile of the reference is left out here: its compilations alone can outrun
# the budget (run bench_gru.py without --no-compile when time allows).
step benchmark 110 benchmark.log python benchmarks/bench_gru.py --device cuda --no-compile \
  --out "$OUT/bench"

{
  echo "# GPU check"
  echo
  echo '```'
  cat "$OUT/env.txt"
  echo "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"
  echo '```'
  echo
  echo "| step | result | time | log |"
  echo "|---|---|---|---|"
  printf '%s\n' "${STEPS[@]}"
  echo
  echo "tests: $(grep -E '(passed|failed|error)' "$OUT/tests.log" | tail -n 1)"
  echo "memcheck: $(grep -E 'ERROR SUMMARY' "$OUT/memcheck.log" | tail -n 1)"
  echo "racecheck: $(grep -E 'RACECHECK SUMMARY|ERROR SUMMARY' "$OUT/racecheck.log" | tail -n 1)"
  echo
  [ -f "$OUT/bench/results.md" ] && cat "$OUT/bench/results.md"
} >"$SUMMARY"
cat "$SUMMARY"
