#!/usr/bin/env bash
# The one command for a machine with a GPU (no network; torch, ninja, nvcc present):
# build for this GPU, then the tests on cpu, cuda, cuda+persistent (require mode: an
# eligible layer that does not run persistent fails its test) and cuda+replay (every loop
# captured and replayed from our own graphs) with the three compute-sanitizer tools on
# the three CUDA paths beside them, then, alone on the GPU, a launch profile, the floor
# probes (barrier costs, FFMA and mma rates), the benchmark (nn.GRU eager, TF32 and
# replayed from a CUDA graph as baselines), the variants (the persistent forward's rows a
# warp; the local form, with W_hh in shared memory or registers, against the grid form at
# H=128; the cluster form against the grid form; tensor cores against FFMA; the direct
# cuBLAS GEMMs against ATen's; float64 eager against replayed), one step at a time, and
# the CPU path at 1, 4 and 16 threads; last, from all of it, the sizes where the persistent
# kernels or replay beat the eager per-step path (auto mode's candidate rows). Logs and a
# summary go to OUTDIR; the summary is printed last. Each step has a time budget: under 10
# minutes in all at worst, about 5 expected on an H100/H200. On a machine whose result
# folder takes few files, run it on a scratch folder and tar that.
set -uo pipefail
OUT=${1:?usage: scripts/gpu_check.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
SUMMARY="$OUT/summary.md"
START=$SECONDS
declare -a STEPS

record() {  # record NAME RC SECONDS LOG
  local verdict=ok
  [ "$2" -eq 124 ] && verdict="TIMED OUT" || { [ "$2" -ne 0 ] && verdict="FAILED (rc $2)"; }
  STEPS+=("| $1 | $verdict | $3 s | $4 |")
  echo "   $1: $verdict in $3 s (at +$((SECONDS - START)) s)"
}

step() {  # step NAME BUDGET_S LOG COMMAND...
  local name=$1 budget=$2 log=$3; shift 3
  local start=$SECONDS
  echo "== $name (budget ${budget}s)"
  timeout "$budget" "$@" >"$OUT/$log" 2>&1
  local rc=$?
  record "$name" $rc $((SECONDS - start)) "$log"
  return $rc
}

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
  nvcc --version | tail -n 2
  compute-sanitizer --version 2>&1 | tail -n 1
  echo "cpus: $(nproc)"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

ARCH=$(python -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())" 2>/dev/null)
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$ARCH}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
# The longest file, one scalar type's persistent kernels, takes about 20 s for one arch.
step build 60 build.log env GRU_CUDA_FORCE_CUDA=1 python setup.py build_ext --inplace

# The sanitizers run beside the tests (their timings do not matter); without the caching
# allocator every tensor is its own allocation, so memcheck sees an overrun past it.
sanitize() {  # sanitize TOOL
  local start=$SECONDS
  PYTHONPATH=$PWD PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout 150 compute-sanitizer --tool "$1" \
    --error-exitcode 1 python scripts/sanitizer_case.py >"$OUT/$1.log" 2>&1
  echo "$? $((SECONDS - start))" >"$OUT/$1.rc"
}
for tool in memcheck racecheck synccheck; do sanitize $tool & done

# The library's tests, on CUDA too (the NER example's need its own packages; CI runs them).
XDIST=$(python -c "import xdist" 2>/dev/null && echo "-n 6")
# The persistent kernels' CPU emulation is left to CI: it checks nothing the GPU adds.
step tests 165 tests.log env OMP_NUM_THREADS=2 python -m pytest -q -p no:cacheprovider tests -ra $XDIST \
  --ignore tests/test_persistent_emulation.py \
  --durations=10
wait
for tool in memcheck racecheck synccheck; do
  read -r rc secs <"$OUT/$tool.rc" || { rc=1; secs=0; }
  record "$tool" "$rc" "$secs" "$tool.log"
done

if [ -n "${GPU_CHECK_NO_BENCH:-}" ]; then  # a rerun after fixes: the checks alone
  printf '%s\n' "${STEPS[@]}"; grep -E '^(FAILED|ERROR)|passed|failed' "$OUT/tests.log" | tail -n 30
  exit 0
fi
step profile 30 profile.log python benchmarks/profile_launches.py
# The floors the kernels are judged against: barrier costs and FFMA / mma rates, measured.
step floors 10 floors.log python benchmarks/floor_probe.py --out "$OUT/floors"
# The reference loop and its torch.compile are left out: slow, and measured before.
# A contender that fails parity or raises makes this step FAILED.
step benchmark 130 benchmark.log python benchmarks/bench_gru.py --device cuda \
  --contenders "fused,persistent,replayed,nn.GRU,nn.GRU TF32,nn.GRU graphed" \
  --dtypes float32,bfloat16 --repeats 10 --out "$OUT/bench"
# The persistent forward's variants, 1, 2 or 4 batch rows a warp, against each other on
# the sizes where rows per warp matter (grid and cluster forms); the local form (W_hh in
# shared memory, then in registers) against the grid form where both can run (H=128);
# the cluster form (smallest cluster 8, then 16) against the grid form (H=256 and 512);
# the grid and cluster forms on tensor cores against FFMA (bfloat16); the
# per-step path's GEMMs on cuBLAS directly against ATen's, in full fp32 and TF32; then
# float64, which only the per-step path takes, eager against replayed.
export OUT
step variants 140 variants.log bash -c 'for rows in 1 2 4; do
  GRU_CUDA_PERSISTENT_ROWS=$rows python benchmarks/bench_gru.py --device cuda \
    --contenders "persistent,persistent cluster,nn.GRU" --repeats 5 --warmup 2 \
    --out "$OUT/persistent-rows-$rows" \
    --sizes "100,8,256,256;100,64,256,256;100,128,256,256;100,64,512,512" || exit 1
done
python benchmarks/bench_gru.py --device cuda --dtypes float32,bfloat16 --repeats 5 --warmup 2 \
  --contenders "persistent,persistent cluster,persistent cluster 16,nn.GRU" \
  --out "$OUT/persistent-cluster" \
  --sizes "100,1,256,256;100,8,256,256;100,64,256,256;100,8,512,512;100,64,512,512" || exit 1
python benchmarks/bench_gru.py --device cuda --dtypes bfloat16 --repeats 5 --warmup 2 \
  --contenders "persistent,persistent mma,persistent cluster,persistent cluster mma,nn.GRU" \
  --out "$OUT/persistent-mma" \
  --sizes "100,8,256,256;100,64,256,256;100,8,1024,1024;100,64,1024,1024" || exit 1
for form in local-1 local-registers-1 local-0; do
  GRU_CUDA_PERSISTENT_LOCAL=${form: -1} GRU_CUDA_PERSISTENT_REGISTERS=$([ "$form" = local-registers-1 ] && echo 1 || echo 0) \
    python benchmarks/bench_gru.py --device cuda \
    --contenders persistent,nn.GRU --repeats 5 --warmup 2 --out "$OUT/persistent-$form" \
    --sizes "100,1,128,128;100,8,128,128;100,64,128,128;100,128,128,128" || exit 1
done
python benchmarks/bench_gru.py --device cuda --dtypes float32,bfloat16 --repeats 5 --warmup 2 \
  --contenders "fused,direct GEMMs,direct GEMMs TF32,nn.GRU,nn.GRU TF32" --out "$OUT/direct-gemm" \
  --sizes "100,8,512,512;100,8,512,512,bidir;100,64,256,256;100,256,512,512;100,8,1536,1536" || exit 1
python benchmarks/bench_gru.py --device cuda --dtypes float64 --contenders fused,replayed,nn.GRU \
  --sizes "100,8,512,512;100,64,256,256" --repeats 5 --warmup 2 --out "$OUT/replay-float64"'
# One step at a time (decoding loops): GRUCell and GRU T=1 against nn on the GPU.
step single-step 30 single-step.log python benchmarks/bench_step.py --device cuda --rounds 7 \
  --out "$OUT/single-step"
# How the CPU path scales with cores: this machine has many, the others two.
step cpu-threads 20 cpu-threads.log bash -c 'for threads in 1 4 16; do
  python benchmarks/bench_gru.py --device cpu --threads $threads --contenders fused,nn.GRU \
    --sizes "100,64,256,256;100,1,256,256;100,64,256,256,packed;60,32,128,128,L2,bidir,packed" \
    --repeats 3 --warmup 1 --out "$OUT/cpu-threads-$threads" || exit 1
done'
# Where the persistent kernels and replay beat the eager per-step path: auto mode's rows.
CARD=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 \
  | grep -oE '[A-Z][0-9]{2,3}' | head -n 1 | tr 'A-Z' 'a-z')  # "NVIDIA H100 80GB HBM3": h100
step rows 5 measured_rows.md python benchmarks/measured_rows.py "$OUT" \
  --run "${CARD:-gpu}-$(date -u +%Y-%m-%d)"

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
  echo "single step on the GPU (nn / ours):"
  grep -E '^\| [0-9]' "$OUT/single-step/results.md" 2>/dev/null \
    | awk -F'|' '{printf "  N=%s H=%s %s: %s\n", $2, $3, $4, $7}'
  echo "CPU path, nn.GRU time / ours by threads (fwd, fwd+bwd per size):"
  for threads in 1 4 16; do
    echo "  $threads: $(grep -E '\| fused \|' "$OUT/cpu-threads-$threads/results.md" 2>/dev/null \
      | awk -F'|' '{printf "%s ", $(NF-1)}')"
  done
  echo "persistent forward by rows a warp (ms: N=8/64/128 at H=256, N=64 at H=512; fwd, fwd+bwd):"
  for rows in 1 2 4; do
    echo "  $rows: $(grep -E '\| persistent \|' "$OUT/persistent-rows-$rows/results.md" 2>/dev/null \
      | awk -F'|' '{printf "%s ", $10}')"
    echo "  $rows, cluster form: $(grep -E '\| persistent cluster \|' \
      "$OUT/persistent-rows-$rows/results.md" 2>/dev/null | awk -F'|' '{printf "%s ", $10}')"
  done
  echo "persistent at H=128: local form (W_hh in shared memory; in registers) / grid form"
  echo "(ms: N=1/8/64/128; fwd, fwd+bwd):"
  for form in local-1 local-registers-1 local-0; do
    echo "  $form: $(grep -E '\| persistent \|' "$OUT/persistent-$form/results.md" 2>/dev/null \
      | awk -F'|' '{printf "%s ", $10}')"
  done
  echo "persistent, grid / cluster form / clusters of 16 (ms: N=1/8/64 at H=256, N=8/64 at"
  echo "H=512, float32 then bfloat16; fwd, fwd+bwd):"
  for name in persistent "persistent cluster" "persistent cluster 16"; do
    echo "  $name: $(grep -E "\| $name \|" "$OUT/persistent-cluster/results.md" 2>/dev/null \
      | awk -F'|' '{printf "%s ", $10}')"
  done
  echo "persistent bfloat16, FFMA / tensor cores (ms: N=8/64 at H=256, H=1024; the cluster"
  echo "form at H=256 only; fwd, fwd+bwd):"
  for name in persistent "persistent mma" "persistent cluster" "persistent cluster mma"; do
    echo "  $name: $(grep -E "\| $name \|" "$OUT/persistent-mma/results.md" 2>/dev/null \
      | awk -F'|' '{printf "%s ", $10}')"
  done
  echo "per-step path, direct GEMMs against ATen's (ms; fwd, fwd+bwd per size and dtype):"
  for name in fused "direct GEMMs" "direct GEMMs TF32"; do
    echo "  $name: $(grep -E "\| $name \|" "$OUT/direct-gemm/results.md" 2>/dev/null \
      | awk -F'|' '{printf "%s ", $10}')"
  done
  echo "direct GEMMs under the sanitizers: $(grep -h 'direct GEMMs:' "$OUT"/*check.log | head -n 1)"
  echo "float64, replayed against eager (ms; fwd, fwd+bwd): $(grep -E '\| (fused|replayed) \|' \
    "$OUT/replay-float64/results.md" 2>/dev/null | awk -F'|' '{printf "%s %s; ", $9, $10}')"
  echo "persistent kernels under the sanitizers: $(grep -h 'persistent kernels ran' "$OUT"/*check.log | head -n 1)"
  echo "tensor cores, registers under the sanitizers: $(grep -h 'on tensor cores' "$OUT"/*check.log | head -n 1)"
  echo "clusters under the sanitizers: $(grep -h 'in clusters' "$OUT"/*check.log | head -n 1)"
  echo "clusters on tensor cores under the sanitizers: $(grep -h 'cluster forwards, backwards on' \
    "$OUT"/*check.log | head -n 1)"
  echo "cluster backward, 2 units a lane, under the sanitizers: $(grep -h '2 units a lane:' \
    "$OUT"/*check.log | head -n 1)"
  echo "replayed loops under the sanitizers: $(grep -h 'replayed loops' "$OUT"/*check.log | head -n 1)"
  echo "ptxas, persistent kernels (registers, spills):"
  grep -A 2 "Compiling entry function.*persistent" "$OUT/build.log" | grep -E "registers|spill" \
    | sort | uniq -c | head -n 8
  for tool in memcheck racecheck synccheck; do
    echo "$tool: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -n 1)"
  done
  echo
  echo "auto mode's candidates (measured_rows.md): $(grep -h 'sizes won' "$OUT/measured_rows.md")"
  sed -n '/^| probe/,/^$/p' "$OUT/floors/floors.md" 2>/dev/null
  sed -n '/^| size/,$p' "$OUT/profile.log"
} >"$SUMMARY"
# Printed last, so that a short tail of the output still shows it: the float32 rows of
# gru_cuda's per-step path, eager and replayed (N, H, pass, contender, ms, the last two
# columns: the ratios), failed tests, then the summary (every row is in bench/results.md).
[ -f "$OUT/bench/results.md" ] && awk -F'|' '$7 ~ /float32/ && $9 ~ /^ (fused|replayed) $/ {
  printf "%s%s%s%s%s|%s|%s\n", $3, $5, $8, $9, $10, $(NF-2), $(NF-1) }' "$OUT/bench/results.md"
grep -E '^(FAILED|ERROR)' "$OUT/tests.log" | head -n 30
cat "$SUMMARY"
