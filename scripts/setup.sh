#!/usr/bin/env bash
# Installs what gru_cuda needs and builds its extension in place (incremental: a
# rebuild compiles only what changed). The compiler's output, the register and spill
# report of every CUDA kernel included, goes to build/build.log; one line is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -r requirements.txt
mkdir -p build
log=build/build.log
start=$(date +%s)
if ! python setup.py build_ext --inplace >"$log" 2>&1; then
  tail -n 40 "$log"
  echo "gru_cuda: the build FAILED after $(( $(date +%s) - start )) s; the whole log is in $log" >&2
  exit 1
fi
what=$(sed -n 's/^gru_cuda: building the \([^,(]*\).*/\1/p' "$log" | tail -n 1)
kernels=$(grep -c "Compiling entry function" "$log" || true)
spilling=$(grep -cE "[1-9][0-9]* bytes spill (stores|loads)" "$log" || true)
if [ "$kernels" -eq 0 ]; then
  ptxas="no CUDA kernel recompiled"
elif [ "$spilling" -eq 0 ]; then
  ptxas="$kernels CUDA kernels compiled, none spills registers"
else
  ptxas="$kernels CUDA kernels compiled, $spilling spill registers (grep spill $log)"
fi
echo "gru_cuda: ${what:-extension} built in $(( $(date +%s) - start )) s; $ptxas; log in $log"
