"""Benchmark of one fused GRU layer (gru_cuda.GRU) against torch.nn.GRU (cuDNN on a GPU,
native on the CPU), the reference loop in plain PyTorch and torch.compile of that loop.

Every contender runs in this one process on identical inputs and weights, and is first
checked against nn.GRU (output, h_n and, for forward+backward, the input gradient); one
that does not match is refused, not timed. Single layer, unidirectional, time-major.

    python benchmarks/bench_gru.py --quick            # a few seconds: the demo
    python benchmarks/bench_gru.py --out DIR          # the default grid, files into DIR
    python benchmarks/bench_gru.py --scaling --out DIR
    python benchmarks/bench_gru.py --sizes "100,64,256,256;50,8,128,128" --no-compile
"""
import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make gru_cuda and benchmarks importable
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks.contenders import (  # noqa: E402
    AUTO, BASELINE, BASELINE_GRAPHED, BASELINE_TF32, COMPILED, DIRECT, DIRECT_TF32,
    PERSISTENT, PERSISTENT_CLUSTER, PERSISTENT_CLUSTER_16, PERSISTENT_CLUSTER_MMA, PERSISTENT_MMA,
    REPLAYED, Size, Unavailable, default_registry, make_problem, output_data)
from gru_cuda import precision  # noqa: E402

PASSES = ("fwd", "fwd+bwd")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
          "float64": torch.float64}
QUICK_SIZE = Size(50, 16, 128, 128)
QUICK_CONTENDERS = ("fused", BASELINE, "reference")
SCALING_CONTENDERS = ("fused", BASELINE)


def default_grid(device):
    """On a GPU: T=100, N in {1, 8, 64} by I=H in {128, 256, 512, 1024} (small batch is
    where a GRU is latency-bound), and the sizes the per-step path takes (the persistent
    kernels' grid form stops at N=128, H=1024; their local form takes N=256 at H=128):
    N=256, and H in {1536, 2048}. On the CPU the
    headline size first, then N and H varied around it, small enough that the grid,
    reference loop included, stays near 10 minutes on a small CPU."""
    if device == "cuda":
        return ([Size(100, n, h, h) for h in (128, 256, 512, 1024) for n in (1, 8, 64, 256)]
                + [Size(100, n, h, h) for h in (1536, 2048) for n in (8, 64, 256)])
    base = Size(100, 64, 256, 256)
    return ([base] + [Size(base.T, n, base.I, base.H) for n in (1, 8)]
            + [Size(base.T, base.N, h, h) for h in (128, 512)]
            + [Size(100, 64, 256, 256, packed=True),  # the work is the real tokens
               Size(60, 32, 128, 128, layers=2, bidirectional=True, packed=True)])  # NER


SCALING_FIXED = {"N": 64, "T": 100}  # N of the T sweep, T of the N sweep


def scaling_sizes(device):
    """T from 10 to 1000 at N=64, and N from 1 to 256 at T=100, at a fixed I=H."""
    h = 512 if device == "cuda" else 128
    by_t = [Size(t, SCALING_FIXED["N"], h, h) for t in (10, 30, 100, 300, 1000)]
    by_n = [Size(SCALING_FIXED["T"], n, h, h) for n in (1, 4, 16, 64, 256)]
    return by_t + [s for s in by_n if s not in by_t]


def parse_sizes(text):
    """'T,N,I,H[,L<layers>][,bidir][,packed];...'"""
    sizes = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        fields = [f.strip() for f in part.split(",")]
        try:
            values = [int(v) for v in fields[:4]]
            extra = {"bidirectional": "bidir" in fields[4:], "packed": "packed" in fields[4:]}
            layers = [f for f in fields[4:] if f not in ("bidir", "packed")]
            if len(layers) > 1 or (layers and not layers[0].startswith("L")):
                raise ValueError
            extra["layers"] = int(layers[0][1:]) if layers else 1
        except ValueError:
            values = []
        if len(values) != 4 or min(values + [extra["layers"]]) <= 0:
            raise argparse.ArgumentTypeError(
                f"a size is T,N,I,H (positive integers), optionally followed by L<layers>, "
                f"bidir and packed; got {part!r}")
        sizes.append(Size(*values, **extra))
    if not sizes:
        raise argparse.ArgumentTypeError("--sizes needs at least one T,N,I,H")
    return sizes


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description="Benchmark gru_cuda.GRU against nn.GRU, the reference loop and its "
                    "torch.compile, after checking each against nn.GRU.")
    preset = p.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_true",
                        help=f"one small size ({QUICK_SIZE.label()}), fused vs nn.GRU vs "
                             "reference, float32, no compile: a few seconds")
    preset.add_argument("--scaling", action="store_true",
                        help="time as T grows 10..1000 (N=64) and N grows 1..256 (T=100) at "
                             "fixed H (512 GPU, 128 CPU): fused vs nn.GRU, float32")
    preset.add_argument("--sizes", type=parse_sizes, metavar="T,N,I,H[,L2][,bidir][,packed];...",
                        help="sizes by hand instead of the default grid")
    p.add_argument("--device", choices=("cpu", "cuda"),
                   default="cuda" if torch.cuda.is_available() else "cpu",
                   help="default: cuda if available")
    p.add_argument("--dtypes", help="comma-separated, e.g. float32,bfloat16 (default: float32 "
                                    "on the CPU and for --quick/--scaling; float32,bfloat16 on "
                                    "a GPU)")
    p.add_argument("--contenders", help="comma-separated names to run (default: the preset's); "
                                        "known: " + ", ".join(default_registry()))
    p.add_argument("--no-compile", action="store_true",
                   help=f"skip the {COMPILED!r} contender (its compilation takes minutes "
                        "on a CPU)")
    p.add_argument("--compile-all", action="store_true",
                   help=f"run {COMPILED!r} at every size (default: the first size only, "
                        "since each size and dtype is a fresh compilation)")
    p.add_argument("--repeats", type=int,
                   help="timed runs per measurement (default 5 on the CPU, 30 on a GPU)")
    p.add_argument("--warmup", type=int,
                   help="untimed runs before each measurement, after the parity check's "
                        "run (default 1 on the CPU, 5 on a GPU; compiled: at least 2)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads(K) (CPU); recorded")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write results.json, results.md and PNG charts here")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device is available")
    on_gpu = args.device == "cuda"
    if args.repeats is None:
        args.repeats = 30 if on_gpu else 5
    if args.warmup is None:
        args.warmup = 5 if on_gpu else 1
    if args.repeats < 1 or args.warmup < 0:
        p.error("--repeats must be >= 1 and --warmup >= 0")
    args.dtypes = _dtypes(p, args, on_gpu)
    args.contenders = _contender_names(args)
    return args


def _dtypes(p, args, on_gpu):
    if args.dtypes:
        names = [d.strip() for d in args.dtypes.split(",") if d.strip()]
        unknown = [d for d in names if d not in DTYPES]
        if unknown:
            p.error(f"unknown dtype(s) {unknown}; known: {', '.join(DTYPES)}")
        return names
    if on_gpu and not (args.quick or args.scaling):
        return ["float32", "bfloat16"]
    return ["float32"]


def _contender_names(args):
    if args.contenders:
        return [c.strip() for c in args.contenders.split(",") if c.strip()]
    if args.quick:
        return list(QUICK_CONTENDERS)
    if args.scaling:
        return list(SCALING_CONTENDERS)
    cuda_only = (AUTO, BASELINE_TF32, BASELINE_GRAPHED, PERSISTENT, PERSISTENT_MMA,
                 PERSISTENT_CLUSTER, PERSISTENT_CLUSTER_16, PERSISTENT_CLUSTER_MMA, REPLAYED,
                 DIRECT, DIRECT_TF32)
    return [n for n in default_registry() if not (n == COMPILED and args.no_compile)
            and not (n in cuda_only and args.device != "cuda")]


def preset_name(args):
    return "quick" if args.quick else "scaling" if args.scaling else \
        "sizes" if args.sizes else "grid"


def plan(args):
    """[(size, dtype name, contender names)] in run order."""
    if args.quick:
        sizes = [QUICK_SIZE]
    elif args.scaling:
        sizes = scaling_sizes(args.device)
    else:
        sizes = args.sizes or default_grid(args.device)
    groups = []
    for i, size in enumerate(sizes):
        for dtype in args.dtypes:
            names = [n for n in args.contenders
                     if (n != COMPILED or (not args.no_compile and (i == 0 or args.compile_all)))
                     and (n not in (BASELINE_TF32, DIRECT_TF32) or dtype == "float32")
                     and (n != PERSISTENT_MMA or dtype in ("float16", "bfloat16"))]
            groups.append((size, dtype, names))
    return groups


# ---- parity ---------------------------------------------------------------------------

def tolerance(dtype):
    """Relative error ||a - b|| / ||b|| allowed against nn.GRU (float32)."""
    return 2e-2 if dtype in (torch.bfloat16, torch.float16) else 1e-4


def make_call(contender, problem, pass_name):
    """The exact closure that is both checked and timed: the contender's forward (and
    backward) inside its context, or a replay of them from a CUDA graph."""
    leaf, inp = problem.inputs()
    context = contender.context or (lambda _pass: contextlib.nullcontext())
    if pass_name == "fwd":
        def call():
            with torch.no_grad(), context(pass_name):
                out, h_n = contender.fn(inp, problem.h0)
            return output_data(out), h_n
    else:
        inputs = [leaf, *contender.params]

        def call():
            with context(pass_name):
                out, h_n = contender.fn(inp, problem.h0)
                out = output_data(out)
                grads = torch.autograd.grad((out, h_n), inputs, (problem.grad_out, problem.grad_h))
            return out, h_n, grads[0]
    return replayed(call) if contender.graphed else call


def replayed(call):
    """The call captured in a CUDA graph at its first run (after a warm-up on a side
    stream, as capture requires), then replayed; it returns the graph's static outputs."""
    graph, static = None, None

    def replay():
        nonlocal graph, static
        if graph is None:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    call()
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static = call()
        graph.replay()
        return static
    return replay


def check_parity(result, problem, pass_name, tol=None):
    """Compares a call's result with the truth; returns the errors and a verdict."""
    names = ("output", "h_n") + (("grad_input",) if pass_name == "fwd+bwd" else ())
    rel, max_abs = {}, 0.0
    for name, got in zip(names, result):
        want = problem.truth[name]
        if got.shape != want.shape:
            return {"ok": False, "reason": f"{name} has shape {tuple(got.shape)}, "
                                           f"nn.GRU's is {tuple(want.shape)}"}
        diff = got.double() - want.double()
        rel[name] = (diff.norm() / want.double().norm().clamp_min(1e-30)).item()
        max_abs = max(max_abs, diff.abs().max().item())
    tol = tol or tolerance(problem.dtype)
    worst = max(rel, key=rel.get)
    ok = all(r < tol for r in rel.values())  # also False for NaN
    reason = None if ok else f"relative error of {worst} {rel[worst]:.2e} >= {tol:.0e}"
    return {"ok": ok, "reason": reason, "rel_err": rel, "max_abs_diff": max_abs,
            "tolerance": tol}


# ---- timing ---------------------------------------------------------------------------

def time_calls(calls, device, warmup, repeats):
    """Milliseconds per run of each call, {key: [ms, ...]}, and {key: exception} for calls
    that failed. After the warm-up, the calls take turns in every round, so that a drift
    in the machine's speed (other load, clocks) falls on all of them alike. On a GPU,
    events on the current stream bracket each run and the host syncs only at the end (a
    sync per run would add its latency)."""
    failed = {}
    for key, (call, runs) in ((k, (c, warmup(k))) for k, c in calls.items()):
        try:
            for _ in range(runs):
                call()
        except Exception as exc:  # noqa: BLE001  (e.g. out of memory: keep the others)
            failed[key] = exc
    spans = {key: [] for key in calls if key not in failed}
    _sync(device)
    for _ in range(repeats):
        for key in list(spans):
            try:
                spans[key].append(_run_timed(calls[key], device))
            except Exception as exc:  # noqa: BLE001
                failed[key] = exc
                del spans[key]
    _sync(device)
    return {key: [_elapsed_ms(span) for span in runs] for key, runs in spans.items()}, failed


def _run_timed(call, device):
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        call()
        end.record()
        return start, end
    start = time.perf_counter()
    call()
    return start, time.perf_counter()


def _elapsed_ms(span):
    start, end = span
    return start.elapsed_time(end) if isinstance(start, torch.cuda.Event) else (end - start) * 1e3


def summarize(times_ms, tokens):
    if len(times_ms) > 1:
        q1, _, q3 = statistics.quantiles(times_ms, n=4, method="inclusive")
    else:
        q1 = q3 = times_ms[0]
    median = statistics.median(times_ms)
    return {"median_ms": median, "min_ms": min(times_ms), "max_ms": max(times_ms),
            "q1_ms": q1, "q3_ms": q3, "tokens_per_s": tokens / (median / 1e3)}


# ---- one size and dtype ---------------------------------------------------------------

class Progress:
    """'[k/K] ...' lines on stderr with the elapsed time."""

    def __init__(self, total):
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def step(self, text):
        self.done += 1
        self.note(f"[{self.done}/{self.total}] {text}")

    def note(self, text):
        print(f"{text} ... (+{time.perf_counter() - self.start:.0f} s)", file=sys.stderr,
              flush=True)


def run_group(size, dtype_name, names, registry, args, progress):
    """Builds and checks every contender on one problem, then times those that passed.
    Returns the measurement records (one per contender and pass) and the parity line."""
    dtype = DTYPES[dtype_name]
    label = f"{size.label()} {dtype_name}"
    progress.note(f"{label}: building inputs and checking parity")
    problem = make_problem(size, args.device, dtype, args.seed)
    records, calls = [], {}
    for name in names:
        slow = " (the first calls compile: minutes on a CPU)" if name == COMPILED else ""
        progress.note(f"{label} {name}: parity check{slow}")
        for pass_name, call, record in _checked(name, registry[name], problem, args):
            records.append(record)
            calls[name, pass_name] = call
    line = parity_line(label, dtype, records)
    print(line, flush=True)  # before any timing: a refused contender is never timed

    def warmup(key):
        return max(args.warmup, 2) if key[0] == COMPILED else args.warmup
    for pass_name in PASSES:
        group = {(r["contender"], r["pass"]): r for r in records if r["pass"] == pass_name}
        for key, record in group.items():
            text = f"{label} {key[0]} {pass_name}"
            progress.step(text if record["status"] == "ok" else
                          f"{text}: {record['status']}, not timed")
        ok = {key: calls[key] for key, r in group.items() if r["status"] == "ok"}
        times, failed = time_calls(ok, args.device, warmup, args.repeats)
        for key, exc in failed.items():
            group[key].update(status="failed", reason="while timing: " + _error(exc))
        for key, runs in times.items():
            group[key].update(times_ms=runs, warmup=warmup(key), repeats=args.repeats,
                              **summarize(runs, problem.tokens))
    _add_ratios(records)
    return records, line


def _checked(name, builder, problem, args):
    """Yields (pass, call, record) for each pass: the record says ok, refused (wrong
    numbers), failed (raised) or skipped (cannot run here), with the reason."""
    base = {"size": vars(problem.size).copy(), "dtype": str(problem.dtype).replace("torch.", ""),
            "contender": name, "device": args.device}
    try:
        contender = builder(problem)
    except Exception as exc:  # noqa: BLE001  (any failure to build is reported, not fatal)
        skipped = isinstance(exc, Unavailable)
        for pass_name in PASSES:
            yield pass_name, None, {**base, "pass": pass_name,
                                    "status": "skipped" if skipped else "failed",
                                    "reason": str(exc) if skipped else _error(exc)}
        return
    if contender.path:
        base["path"] = contender.path
    for pass_name in PASSES:
        record = {**base, "pass": pass_name}
        call = make_call(contender, problem, pass_name)
        start = time.perf_counter()
        try:
            result = call()
            _sync(args.device)
        except Exception as exc:  # noqa: BLE001
            record.update(status="skipped" if isinstance(exc, Unavailable) else "failed",
                          reason=_error(exc))
            yield pass_name, None, record
            continue
        # The first call includes one-off costs, e.g. the whole compilation.
        record["first_call_s"] = time.perf_counter() - start
        parity = check_parity(result, problem, pass_name, contender.tolerance)
        record.update(parity=parity, status="ok" if parity["ok"] else "refused",
                      reason=parity["reason"])
        yield pass_name, call, record


def _error(exc):
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return "failed: " + (text[:200] + "..." if len(text) > 200 else text)


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _add_ratios(records):
    """nn.GRU time / contender time for the same pass: > 1 is faster than nn.GRU. In
    float32 on CUDA also against nn.GRU with TF32 (ratio_vs_nn_tf32), and on CUDA against
    nn.GRU replayed from a CUDA graph (ratio_vs_nn_graphed)."""
    for key, baseline in (("ratio_vs_nn", BASELINE), ("ratio_vs_nn_tf32", BASELINE_TF32),
                          ("ratio_vs_nn_graphed", BASELINE_GRAPHED)):
        for record in records:
            base = next((r for r in records if r["contender"] == baseline
                         and r["pass"] == record["pass"] and r["status"] == "ok"), None)
            if record["status"] == "ok" and base is not None:
                record[key] = base["median_ms"] / record["median_ms"]
            else:
                record[key] = None


def parity_line(label, dtype, records):
    """One line: the largest abs diff of each contender, then the verdict."""
    diffs = {}
    for r in records:
        if "parity" in r and "max_abs_diff" in r["parity"]:
            diffs[r["contender"]] = max(diffs.get(r["contender"], 0.0), r["parity"]["max_abs_diff"])
    if dtype == torch.float32:
        diffs.pop(BASELINE, None)  # it is the truth itself
    shown = ", ".join(f"{d:.1e} ({name})" for name, d in diffs.items()) or "n/a"
    bad = [f"{r['contender']} {r['pass']} {r['status']}: {r['reason']}"
           for r in records if r["status"] != "ok"]
    tol = next((r["parity"]["tolerance"] for r in records if "tolerance" in r.get("parity", {})),
               None)
    verdict = "REFUSED/SKIPPED: " + "; ".join(bad) if bad else \
        f"passed (rel err < {tol:.0e} on output, h_n, input grad)"
    return f"parity vs nn.GRU: max abs diff {shown} [{label}]: {verdict}"


# ---- main -----------------------------------------------------------------------------

def main(argv=None, registry=None):
    """Runs the benchmark; returns the results (also what --out writes as JSON)."""
    args = parse_args(argv)
    registry = registry or default_registry()
    unknown = [n for n in args.contenders if n not in registry]
    if unknown:
        raise SystemExit(f"unknown contender(s) {unknown}; known: {', '.join(registry)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    precision.set_full_fp32_precision(args.device)
    machine = report.machine_info(args.device)  # at the start: the load before ours
    busy = report.busy_note(args.device)
    if busy:
        print(f"note: {busy}", file=sys.stderr)
    groups = plan(args)
    progress = Progress(sum(len(names) for _, _, names in groups) * len(PASSES))
    started = time.time()
    measurements, parity_lines = [], []
    for size, dtype_name, names in groups:
        records, line = run_group(size, dtype_name, names, registry, args, progress)
        measurements += records
        parity_lines.append(line)
    results = {
        "preset": preset_name(args),
        "argv": sys.argv[1:] if argv is None else list(argv),
        "config": {"device": args.device, "dtypes": args.dtypes, "repeats": args.repeats,
                   "warmup": args.warmup, "seed": args.seed, "contenders": args.contenders,
                   "sizes": [vars(s) for s in dict.fromkeys(g[0] for g in groups)],
                   "threads": torch.get_num_threads(), "scaling_fixed": SCALING_FIXED},
        "machine": machine,
        "started": report.iso(started),
        "wall_s": time.time() - started,
        "parity": parity_lines,
        "measurements": measurements,
    }
    table = report.markdown_table(measurements)
    print()
    print(table)
    if args.out:
        written = report.write_all(results, args.out)
        print(f"\nwrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    print(f"done in {results['wall_s']:.0f} s", file=sys.stderr)
    return results


def failures(results):
    """The contenders that gave wrong numbers or raised: each makes the run fail."""
    return [f"{m['contender']} {m['pass']} [{m['size']}, {m['dtype']}] {m['status']}: "
            f"{m['reason']}" for m in results["measurements"]
            if m["status"] in ("refused", "failed")]


if __name__ == "__main__":
    bad = failures(main())
    for line in bad:
        print(f"FAILED: {line}", file=sys.stderr)
    sys.exit(1 if bad else 0)
