"""The floor of a persistent layer, measured on this GPU: the barrier costs (a grid
barrier over one block an SM; a cluster barrier over 8 and over 16 blocks) and the
device's FFMA and mma.sync rates, each the median of repeated probes, then for each size
the layer's FLOPs at the rate its precision runs at plus T barriers a pass. A kernel
within 2x of its floor is near what the chip allows; far from it, it is bound by
something else (latency, shared-memory loads, launches).

    python benchmarks/floor_probe.py --out DIR       # needs a CUDA GPU
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make gru_cuda and benchmarks importable
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import gru_cuda  # noqa: E402, F401  (loads the ops)

# Iterations a probe: enough for milliseconds of device time.
ITERATIONS = {"grid_barrier_us": 2000, "cluster8_barrier_us": 5000,
              "cluster16_barrier_us": 5000, "ffma_tflops": 20000, "mma_bf16_tflops": 20000,
              "mma_tf32_tflops": 20000}
# (T, N, H) with I = H, one direction: the goal sizes.
SIZES = [(100, N, H) for H in (256, 512) for N in (1, 8, 32, 64)] + \
        [(100, N, 1024) for N in (1, 8, 32, 64)]
# The rate each precision runs at, and the barrier each form waits at a step.
RATES = {"float32": "ffma_tflops", "float32 TF32": "mma_tf32_tflops",
         "bfloat16": "mma_bf16_tflops"}
BARRIERS = {"grid": "grid_barrier_us", "cluster 8": "cluster8_barrier_us",
            "cluster 16": "cluster16_barrier_us"}


def floors(T, N, H, rates):
    """Milliseconds: {(precision, form): (forward, forward+backward)} for a layer of T
    steps, N rows, I = H, one direction, from rates (TFLOP/s and µs a barrier). The
    forward is 2 * 3H * (I + H) * N * T FLOPs (input and recurrent products); the
    backward twice that (the gradients of the input, the state and both weights); one
    barrier a step in each pass."""
    forward_flops = 2 * 3 * H * (H + H) * N * T
    result = {}
    for precision, rate in RATES.items():
        for form, barrier in BARRIERS.items():
            if rates.get(rate) is None or rates.get(barrier) is None:
                continue
            compute_ms = forward_flops / (rates[rate] * 1e12) * 1e3
            barrier_ms = T * rates[barrier] * 1e-3
            result[(precision, form)] = (compute_ms + barrier_ms,
                                         3 * compute_ms + 2 * barrier_ms)
    return result


def probe(name, repeats):
    """The probe's median over repeats (after one warm-up), or None where it cannot run
    (a cluster on a GPU before sm_90)."""
    try:
        torch.ops.gru_cuda.floor_probe(name, 10)
        return statistics.median(torch.ops.gru_cuda.floor_probe(name, ITERATIONS[name])
                                 for _ in range(repeats))
    except RuntimeError as error:
        print(f"{name}: not measured ({str(error).splitlines()[0]})")
        return None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=None, help="folder for floors.md, floors.json")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        sys.exit("floor_probe: needs a CUDA GPU")
    names = torch.ops.gru_cuda.floor_probe_names().split(",")
    rates = {name: probe(name, args.repeats) for name in names}
    lines = [f"# Floors on {torch.cuda.get_device_name()}", "",
             "| probe | value |", "|---|---:|"]
    lines += [f"| {name} | {'-' if value is None else f'{value:.3g}'} |"
              for name, value in rates.items()]
    lines += ["", "Floor of T=100, I=H, one direction (ms: forward / forward+backward):", "",
              "| N | H | " + " | ".join(f"{p}, {f}" for p in RATES for f in BARRIERS) + " |",
              "|---:|---:|" + "---|" * (len(RATES) * len(BARRIERS))]
    table = []
    for T, N, H in SIZES:
        row = floors(T, N, H, rates)
        table.append({"T": T, "N": N, "H": H,
                      "floors_ms": {f"{p}, {f}": v for (p, f), v in row.items()}})
        cells = [f"{row[(p, f)][0]:.3f} / {row[(p, f)][1]:.3f}" if (p, f) in row else "-"
                 for p in RATES for f in BARRIERS]
        lines.append(f"| {N} | {H} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "floors.md").write_text(text)
        (args.out / "floors.json").write_text(json.dumps({"rates": rates, "sizes": table},
                                                         indent=1))
    return rates


if __name__ == "__main__":
    main()
