"""One decoding step at a time: GRUCell, and GRU with T=1, called once per token in a
chain (each call's state feeds the next), in inference, as seq2seq decoders, streaming
models and autoregressive generation call them. gru_cuda against nn.GRUCell / nn.GRU with
the same weights, in one process; the contenders take turns in every round and the
median round counts. At small N the fixed cost of a call dominates.

    python benchmarks/bench_step.py                  # CPU, 1 thread
    python benchmarks/bench_step.py --device cuda --out DIR
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make gru_cuda and benchmarks importable
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import gru_cuda  # noqa: E402
from benchmarks import report  # noqa: E402
from gru_cuda import precision  # noqa: E402

CASES = ((1, 128), (1, 256), (1, 512), (8, 256), (64, 512))  # (N, H), input size H


def _cell_chain(cell, x, h, steps):
    for _ in range(steps):
        h = cell(x, h)
    return h


def _layer_chain(gru, x, h, steps):
    x = x.unsqueeze(0)
    h = h.unsqueeze(0)
    for _ in range(steps):
        _, h = gru(x, h)
    return h[0]


def contenders(N, H, device):
    """{(kind, name): chain(steps) -> final state}, on one set of weights and inputs."""
    torch.manual_seed(N * 1000 + H)
    ours_cell = gru_cuda.GRUCell(H, H, device=device)
    nn_cell = nn.GRUCell(H, H, device=device)
    nn_cell.load_state_dict(ours_cell.state_dict())
    ours_gru = gru_cuda.GRU(H, H, device=device)
    nn_gru = nn.GRU(H, H, device=device)
    nn_gru.load_state_dict(ours_gru.state_dict())
    x = torch.randn(N, H, device=device)
    h = torch.randn(N, H, device=device)
    return {("GRUCell", "gru_cuda"): lambda s: _cell_chain(ours_cell, x, h, s),
            ("GRUCell", "nn"): lambda s: _cell_chain(nn_cell, x, h, s),
            ("GRU T=1", "gru_cuda"): lambda s: _layer_chain(ours_gru, x, h, s),
            ("GRU T=1", "nn"): lambda s: _layer_chain(nn_gru, x, h, s)}


def time_case(N, H, device, steps, rounds):
    """Microseconds per step of each contender (median of rounds), after a parity check
    of the final states: ours must match nn's."""
    chains = contenders(N, H, device)
    with torch.no_grad():
        for kind in ("GRUCell", "GRU T=1"):
            got, want = chains[kind, "gru_cuda"](20), chains[kind, "nn"](20)
            err = ((got - want).norm() / want.norm()).item()
            if not err < 1e-4:
                raise SystemExit(f"{kind} N={N} H={H}: ours differs from nn by {err:.1e}")
        times = {key: [] for key in chains}
        for _ in range(rounds):
            for key, chain in chains.items():
                start = time.perf_counter()
                chain(steps)
                if device == "cuda":
                    torch.cuda.synchronize()
                times[key].append((time.perf_counter() - start) / steps * 1e6)
    return {key: statistics.median(runs) for key, runs in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--steps", type=int, default=300, help="chained calls per timed run")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--cases", default=";".join(f"{n},{h}" for n, h in CASES),
                   help="N,H;N,H;... (default: %(default)s)")
    p.add_argument("--out", type=Path, help="write results.json and results.md here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    precision.set_full_fp32_precision(args.device)
    cases = [tuple(int(v) for v in c.split(",")) for c in args.cases.split(";") if c]
    rows = []
    for N, H in cases:
        us = time_case(N, H, args.device, args.steps, args.rounds)
        for kind in ("GRUCell", "GRU T=1"):
            ours, theirs = us[kind, "gru_cuda"], us[kind, "nn"]
            rows.append({"N": N, "H": H, "kind": kind, "gru_cuda_us": ours, "nn_us": theirs,
                         "ratio_vs_nn": theirs / ours})
    table = ["| N | H | call | nn us/step | gru_cuda us/step | nn / gru_cuda |",
             "|---:|---:|---|---:|---:|---:|"]
    table += [f"| {r['N']} | {r['H']} | {r['kind']} | {r['nn_us']:.1f} | "
              f"{r['gru_cuda_us']:.1f} | {r['ratio_vs_nn']:.2f}x |" for r in rows]
    machine = report.machine_info(args.device)
    print(report.machine_line(machine))
    print(f"float32, inference, {args.steps} chained calls per run, median of {args.rounds} "
          "interleaved rounds")
    print("\n".join(table))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(
            {"machine": machine, "config": vars(args) | {"out": str(args.out)}, "rows": rows},
            indent=1))
        (args.out / "results.md").write_text("\n".join(table) + "\n")
    return rows


if __name__ == "__main__":
    main()
