"""Where the persistent kernels and graph replay beat gru_cuda's eager per-step path, from
a GPU check's results (scripts/gpu_check.sh OUTDIR): the candidates for auto mode's
tables (csrc/persistent/persistent_defaults.h, csrc/replay/replay_defaults.h).

Every results.json under OUTDIR is read. Within each one (one process, contenders taking
turns) each size's contenders that name their path are compared with `fused` in both
passes; where a file ran no `fused` (the variants'), through both ratios to nn.GRU, fused's
from another file. A path wins a size where it is faster by `--margin` in both passes
and passed parity.
Across files, the persistent variant with the best worse-pass ratio wins the size. The
rows printed are one size each: merge neighbouring sizes into ranges by hand, and keep a
range only where every measured size inside it won.

    python benchmarks/measured_rows.py OUTDIR --run h200-2026-12-03
"""
import argparse
import json
import sys
from pathlib import Path

PASSES = ("fwd", "fwd+bwd")
BASE = "fused"
C10_DTYPES = {"float32": "Float", "float16": "Half", "bfloat16": "BFloat16", "float64": "Double"}
FORMS = {"grid": "kGrid", "local": "kLocal", "cluster": "kCluster"}


def _size_key(record):
    s = record["size"]
    return (s["T"], s["N"], s["I"], s["H"], s.get("layers", 1), s.get("bidirectional", False),
            s.get("packed", False), record["dtype"])


def _ok_records(results):
    return {(_size_key(r), r["contender"], r["pass"]): r
            for r in results["measurements"] if r["status"] == "ok" and r["parity"]["ok"]}


def fused_ratios(all_results):
    """{(size key, pass): fused's nn.GRU time / its own} from every file that ran fused
    beside nn.GRU: the bridge for files that ran a path beside nn.GRU only."""
    bridge = {}
    for results in all_results:
        for (key, name, pass_name), r in _ok_records(results).items():
            if name == BASE and r.get("ratio_vs_nn"):
                bridge.setdefault((key, pass_name), r["ratio_vs_nn"])
    return bridge


def candidates(results, source, bridge):
    """(size key, contender, path, {pass: fused's time / the contender's}, source) for each
    contender of one results file that names its path and ran both passes correctly:
    against fused in the same file, else through both ratios to nn.GRU (source marked
    "via nn.GRU": two processes, less exact)."""
    ok = _ok_records(results)
    found = []
    for (key, name, pass_name), record in ok.items():
        if pass_name != PASSES[0] or "path" not in record:
            continue
        ours = [ok.get((key, name, p)) for p in PASSES]
        base = [ok.get((key, BASE, p)) for p in PASSES]
        if not all(ours):
            continue
        if all(base):
            ratios = {p: b["median_ms"] / o["median_ms"] for p, o, b in zip(PASSES, ours, base)}
            found.append((key, name, record["path"], ratios, source))
        elif all(o.get("ratio_vs_nn") and (key, p) in bridge for p, o in zip(PASSES, ours)):
            ratios = {p: o["ratio_vs_nn"] / bridge[(key, p)] for p, o in zip(PASSES, ours)}
            found.append((key, name, record["path"], ratios, f"{source} via nn.GRU"))
    return found


def winners(all_candidates, margin):
    """{(kind, size key): best candidate} where kind is "persistent" or "replay" and the
    candidate beats fused by margin in both passes."""
    best = {}
    for candidate in all_candidates:
        key, _, path, ratios, _ = candidate
        if min(ratios.values()) < 1 + margin:
            continue
        kind = "replay" if path.get("replay") else "persistent"
        held = best.get((kind, key))
        if held is None or min(ratios.values()) > min(held[3].values()):
            best[(kind, key)] = candidate
    return best


def cpp_row(kind, key, path, run):
    """The table row for one size, as C++ (an exact range: H..H, N..N)."""
    T, N, I, H, layers, bidirectional, packed, dtype = key
    shapes = f'{{"{C10_DTYPES[dtype]}", {H}, {H}, {N}, {N}, {2 if bidirectional else 1}}}'
    if kind == "replay":
        return f'{{{shapes}, "{run}"}},'
    rows = path["rows_per_warp"] or 1
    return (f'{{{shapes}, PersistentForm::{FORMS[path["persistent"]]}, {rows}, '
            f'{str(path["mma"]).lower()}, {str(path["registers"]).lower()}, '
            f'{path["cluster_size"] or 8}, "{run}"}},')


def report(best, run):
    lines = ["| path | dtype | T | N | I | H | layers, bidir, packed | won by | fwd | fwd+bwd "
             "| source |", "|---|---|---:|---:|---:|---:|---|---|---:|---:|---|"]
    rows = {"persistent": [], "replay": []}
    for (kind, key), (_, name, path, ratios, source) in sorted(best.items(), key=str):
        T, N, I, H, layers, bidirectional, packed, dtype = key
        lines.append(f"| {kind} | {dtype} | {T} | {N} | {I} | {H} | {layers}, {bidirectional}, "
                     f"{packed} | {name} {json.dumps(path)} | {ratios['fwd']:.2f}x "
                     f"| {ratios['fwd+bwd']:.2f}x | {source} |")
        rows[kind].append(cpp_row(kind, key, path, run))
    for kind, header in (("persistent", "kPersistentDefaults"), ("replay", "kReplayDefaults")):
        lines += ["", f"{header} ({len(rows[kind])} sizes won):", "```cpp", *rows[kind], "```"]
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("outdir", type=Path, help="a GPU check's output folder")
    p.add_argument("--run", required=True, help="the results folder name the rows cite")
    p.add_argument("--margin", type=float, default=0.05,
                   help="the least gain over fused, in both passes (default 0.05: 5%%)")
    args = p.parse_args(argv)
    files = []
    for path in sorted(args.outdir.rglob("results.json")):
        results = json.loads(path.read_text())
        if results.get("config", {}).get("device") == "cuda":
            files.append((results, str(path.parent.relative_to(args.outdir))))
    bridge = fused_ratios(results for results, _ in files)
    found = [c for results, source in files for c in candidates(results, source, bridge)]
    if not found:
        sys.exit(f"no CUDA contender with a path and a fused baseline under {args.outdir}")
    text = report(winners(found, args.margin), args.run)
    print(text)
    return text


if __name__ == "__main__":
    main()
