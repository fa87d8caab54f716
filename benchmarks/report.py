"""What the GRU benchmark records and writes: the machine, the Markdown table, the JSON
and the charts."""
import datetime
import json
import os
import platform
import shlex
import subprocess
from pathlib import Path

import torch

from gru_cuda.precision import cudnn_rnn_allows_tf32


def _fp32_settings(device):
    settings = {"float32_matmul_precision": torch.get_float32_matmul_precision()}
    if device == "cuda":
        settings["cudnn_rnn_fp32_precision"] = "tf32" if cudnn_rnn_allows_tf32() else "ieee"
        settings["cudnn_benchmark"] = torch.backends.cudnn.benchmark
    return settings


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(device):
    import gru_cuda
    info = {
        "cpu": cpu_model(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
        "platform": platform.platform(), "python": platform.python_version(),
        "torch": torch.__version__, "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "gru_cuda_cuda_kernels": gru_cuda.has_cuda_kernels(), "git_commit": _git_commit(),
        "date": iso(), "device": device, "load_average_1min": load_average(),
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        info["gpu"] = props.name
        info["gpu_capability"] = f"{props.major}.{props.minor}"
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
    info.update(_fp32_settings(device))
    return info


def load_average():
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):  # not on every platform
        return None


def busy_note(device):
    """A warning when other processes already load the CPU: CPU timings are then noisy,
    and threads that wait for each other (OpenMP) can slow down by orders of magnitude."""
    load = load_average()
    if device != "cpu" or load is None or load < 1.0:
        return None
    note = f"load average {load:.1f} on {os.cpu_count()} CPUs before the start: timings are noisy"
    threads = torch.get_num_threads()
    if threads > 1:
        note += f"; {threads} threads compete with the load, --threads 1 may well be faster"
    return note


def iso(timestamp=None):
    when = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc) if timestamp \
        else datetime.datetime.now(datetime.timezone.utc)
    return when.isoformat(timespec="seconds")


def machine_line(info):
    where = f"GPU {info['gpu']}" if info.get("gpu") else \
        f"CPU {info['cpu']}, {info['threads']} thread{'s' if info['threads'] != 1 else ''}"
    return (f"{where}; torch {info['torch']}, CUDA {info['cuda']}, cuDNN {info['cudnn']}; "
            f"{info['date']}")


# ---- table ----------------------------------------------------------------------------

def _si(value):
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}"


def _ms(value):
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


# Ratio columns: (record key, header); a column shows only when some record has it.
RATIO_COLUMNS = (("ratio_vs_nn", "vs nn.GRU"), ("ratio_vs_nn_tf32", "vs nn.GRU TF32"),
                 ("ratio_vs_nn_graphed", "vs nn.GRU graphed"))


def markdown_table(measurements):
    """One row per size x dtype x pass x contender; a ratio column beyond nn.GRU's only
    when that baseline ran (TF32: float32 on CUDA; graphed: CUDA)."""
    columns = [(key, header) for i, (key, header) in enumerate(RATIO_COLUMNS)
               if i == 0 or any(m.get(key) for m in measurements)]
    lines = ["| T | N | I | H | layers, directions, input | dtype | pass | contender "
             "| ms (median) | min - max ms | tokens/s |"
             + "".join(f" {header} |" for _, header in columns),
             "|---:|---:|---:|---:|---|---|---|---|---:|---:|---:|" + "---:|" * len(columns)]
    for m in sorted(measurements, key=_row_order(measurements)):
        s = m["size"]
        head = f"| {s['T']} | {s['N']} | {s['I']} | {s['H']} | {_variant(s)} | {m['dtype']} " \
               f"| {m['pass']} | {m['contender']} "
        if m["status"] != "ok":
            lines.append(head + f"| {m['status']}: {m['reason']} | | |" + " |" * len(columns))
            continue
        ratios = [m.get(key) for key, _ in columns]
        cells = "".join(f" {r:.2f}x |" if r is not None else " |" for r in ratios)
        lines.append(head + f"| {_ms(m['median_ms'])} | {_ms(m['min_ms'])} - "
                            f"{_ms(m['max_ms'])} | {_si(m['tokens_per_s'])} |" + cells)
    return "\n".join(lines)


def _row_order(measurements):
    """Keeps the run order of sizes, dtypes and contenders, but groups rows by pass."""
    first_seen = {}
    for i, m in enumerate(measurements):
        first_seen.setdefault(_size_key(m) + (m["dtype"],), i)
        first_seen.setdefault(m["contender"], i)
    return lambda m: (first_seen[_size_key(m) + (m["dtype"],)], m["pass"],
                      first_seen[m["contender"]])


def _variant(size):
    """'1, 1, padded' unless the size says otherwise (older results lack the fields)."""
    return (f"{size.get('layers', 1)}, {2 if size.get('bidirectional') else 1}, "
            f"{'packed' if size.get('packed') else 'padded'}")


def _size_key(m):
    s = m["size"]
    return (s["T"], s["N"], s["I"], s["H"], _variant(s))


# ---- files ----------------------------------------------------------------------------

def write_all(results, out_dir):
    """results.json, results.md and the charts; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    charts = write_charts(results, out_dir)
    results["charts"] = [p.name for p in charts]
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    md_path.write_text(markdown_report(results))
    return [json_path, md_path, *charts]


def markdown_report(results):
    info = results["machine"]
    cfg = results["config"]
    lines = [f"# GRU benchmark: {results['preset']}", "",
             f"Machine: {machine_line(info)}.", "",
             f"Command: `{shlex.join(['python', 'benchmarks/bench_gru.py', *results['argv']])}`; "
             f"{cfg['repeats']} timed runs per row after {cfg['warmup']} warm-up runs; "
             f"wall time {results['wall_s']:.0f} s.", "",
             "Ratio: nn.GRU time / contender time (> 1: faster than nn.GRU). Spread: "
             "min - max of the timed runs.", ""]
    lines += [f"- {line}" for line in results["parity"]]
    lines += ["", markdown_table(results["measurements"]), ""]
    lines += [f"![{name}]({name})" for name in results.get("charts", [])]
    return "\n".join(lines) + "\n"


def write_charts(results, out_dir):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed; no charts (pip install matplotlib)")
        return []
    ok = [m for m in results["measurements"] if m["status"] == "ok"]
    if results["preset"] == "scaling":
        paths = [_scaling_chart(plt, ok, results["config"]["scaling_fixed"], out_dir)]
    else:
        paths = [_bar_chart(plt, ok, dtype, out_dir)
                 for dtype in dict.fromkeys(m["dtype"] for m in ok)]
    return [p for p in paths if p is not None]


def _bar_chart(plt, ok, dtype, out_dir):
    """tokens/s per contender (bars) per size (groups), one panel per pass."""
    rows = [m for m in ok if m["dtype"] == dtype]
    sizes = list(dict.fromkeys(_size_key(m) for m in rows))
    names = list(dict.fromkeys(m["contender"] for m in rows))
    if not rows:
        return None
    fig, axes = plt.subplots(2, 1, figsize=(max(7, 1.8 * len(sizes)), 8))
    width = 0.8 / len(names)
    for ax, pass_name in zip(axes, ("fwd", "fwd+bwd")):
        for j, name in enumerate(names):
            values = [next((m["tokens_per_s"] for m in rows if m["contender"] == name
                            and m["pass"] == pass_name and _size_key(m) == s), 0)
                      for s in sizes]
            ax.bar([i + (j - (len(names) - 1) / 2) * width for i in range(len(sizes))],
                   values, width, label=name)
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([f"T={t} N={n}\nI={i} H={h}\n{v}" for t, n, i, h, v in sizes],
                           fontsize=8)
        ax.set_yscale("log")  # N=1 and N=64 differ by orders of magnitude
        ax.set_ylabel("tokens/s")
        ax.set_title(f"{pass_name}, {dtype}")
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    return _save(plt, fig, out_dir / f"tokens_per_s_{dtype}.png")


def _scaling_chart(plt, ok, fixed, out_dir):
    """ms per call as T grows (N fixed) and as N grows (T fixed), log-log."""
    if not ok:
        return None
    n_fixed, t_fixed = fixed["N"], fixed["T"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, axis, fixed_key, fixed in ((axes[0], "T", "N", n_fixed),
                                       (axes[1], "N", "T", t_fixed)):
        for k, name in enumerate(dict.fromkeys(m["contender"] for m in ok)):
            for pass_name, style in (("fwd+bwd", "-o"), ("fwd", "--s")):
                pts = sorted((m["size"][axis], m["median_ms"]) for m in ok
                             if m["contender"] == name and m["pass"] == pass_name
                             and m["size"][fixed_key] == fixed)
                if pts:
                    ax.plot(*zip(*pts), style, color=f"C{k}", label=f"{name} {pass_name}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(axis)
        ax.set_ylabel("ms per call")
        ax.set_title(f"time vs {axis} ({fixed_key}={fixed}, H={ok[0]['size']['H']})")
        ax.grid(which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return _save(plt, fig, out_dir / "scaling.png")


def _save(plt, fig, path):
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
