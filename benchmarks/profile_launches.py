"""Where the GPU time of one call goes, for gru_cuda.GRU ("fused"; "persistent" with its
persistent kernels where they run; "replayed", its per-step loops replayed from its own
graphs) and nn.GRU (cuDNN):
kernels launched per call, the sum of their device time, the call's time in eager mode,
and the same call replayed from a CUDA graph (which removes the host's launch cost).
Eager time well above both the kernel sum and the graph replay means the call is bound
by launch latency and host work, not by the GPU.

    python benchmarks/profile_launches.py [--sizes "100,8,512,512;..."] [--dtype float32]
"""
import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402

from benchmarks.bench_gru import DTYPES, make_call, parse_sizes, replayed  # noqa: E402
from benchmarks.contenders import (  # noqa: E402
    BASELINE, PERSISTENT, REPLAYED, Unavailable, build_fused, build_nn, build_persistent,
    build_replayed, make_problem)
from gru_cuda import precision  # noqa: E402

DEFAULT_SIZES = "100,1,512,512;100,8,512,512;100,64,512,512;100,64,1024,1024"


def median_ms(fn, repeats=20):
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def kernel_stats(call):
    """(kernels per call, their summed device time in ms, top kernels by time)."""
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        call()
        torch.cuda.synchronize()
    kernels = [e for e in prof.key_averages()
               if e.device_type == torch.autograd.DeviceType.CUDA]

    def device_us(e):
        return getattr(e, "device_time_total", None) or getattr(e, "cuda_time_total", 0)
    count = sum(e.count for e in kernels)
    total_ms = sum(device_us(e) for e in kernels) / 1e3
    top = sorted(kernels, key=device_us, reverse=True)[:3]
    return count, total_ms, [(e.key[:60], e.count, device_us(e) / 1e3) for e in top]


def graph_replay_ms(call):
    """Median time of the call replayed from a CUDA graph, or None if capture fails."""
    replay = replayed(call)
    try:
        replay()  # captures
    except Exception as exc:  # noqa: BLE001  (report, keep the other rows)
        print(f"  graph capture failed: {type(exc).__name__}: {str(exc)[:120]}", flush=True)
        return None
    return median_ms(replay)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=parse_sizes, default=parse_sizes(DEFAULT_SIZES))
    p.add_argument("--dtype", default="float32", choices=DTYPES)
    args = p.parse_args(argv)
    precision.set_full_fp32_precision("cuda")
    dtype = DTYPES[args.dtype]
    rows = ["| size | dtype | contender | pass | eager ms | graph replay ms | kernels/call "
            "| kernel time ms | GPU busy |", "|---|---|---|---|---:|---:|---:|---:|---:|"]
    for size in args.sizes:
        problem = make_problem(size, "cuda", dtype)
        for name, builder in (("fused", build_fused), (PERSISTENT, build_persistent),
                              (REPLAYED, build_replayed), (BASELINE, build_nn)):
            try:
                contender = builder(problem)
            except Unavailable as exc:
                print(f"{size.label()} {name}: {exc}", flush=True)
                continue
            for pass_name in ("fwd", "fwd+bwd"):
                call = make_call(contender, problem, pass_name)
                for _ in range(3):
                    call()
                eager = median_ms(call)
                count, kernel_ms, top = kernel_stats(call)
                # Under a caller's capture the persistent kernels and our own replay step
                # aside: a replay of that capture would time the eager per-step path.
                graph = None if name in (PERSISTENT, REPLAYED) else graph_replay_ms(call)
                print(f"{size.label()} {name} {pass_name}: top kernels "
                      + "; ".join(f"{k} x{c} {ms:.3f} ms" for k, c, ms in top), flush=True)
                graph_cell = f"{graph:.3f}" if graph is not None else "n/a"
                rows.append(f"| {size.label()} | {args.dtype} | {name} | {pass_name} "
                            f"| {eager:.3f} | {graph_cell} | {count} | {kernel_ms:.3f} "
                            f"| {100 * kernel_ms / eager:.0f}% |")
    print()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
