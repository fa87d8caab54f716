"""Where the persistent kernels and graph replay beat gru_cuda's eager per-step path, from
a GPU check's results (scripts/gpu_check.sh OUTDIR): the candidates for auto mode's
tables (csrc/persistent/persistent_defaults.h, csrc/replay/replay_defaults.h).

Every results.json under OUTDIR is read. Within each one (one process, contenders taking
turns) each size's contenders that name their path are compared with `fused` in both
passes; where a file ran no `fused` (the variants'), through both ratios to nn.GRU, fused's
from another file. A table row keys on dtype, H, N and directions: a variant wins a key
where every measurement of it there (each size, file and pass) beat fused by `--margin`
with parity passed; of the winners the one with the best worst ratio. Every variant is
listed, won or lost; the rows printed are one key each: merge neighbouring keys into
ranges by hand, only over keys that won.

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


def _records(results):
    return {(_size_key(r), r["contender"], r["pass"]): r for r in results["measurements"]}


def _ok(record):
    return record is not None and record["status"] == "ok" and record["parity"]["ok"]


def fused_ratios(all_results):
    """{(size key, pass): fused's nn.GRU time / its own} from every file that ran fused
    beside nn.GRU: the bridge for files that ran a path beside nn.GRU only."""
    bridge = {}
    for results in all_results:
        for (key, name, pass_name), r in _records(results).items():
            if name == BASE and _ok(r) and r.get("ratio_vs_nn"):
                bridge.setdefault((key, pass_name), r["ratio_vs_nn"])
    return bridge


def candidates(results, source, bridge):
    """(size key, contender, path, {pass: fused's time / the contender's}, source) for each
    contender of one results file that names its path: against fused in the same file,
    else through both ratios to nn.GRU (source marked "via nn.GRU": two processes, less
    exact). A contender that ran but failed a pass (wrong numbers, an error) counts as a
    loss there: ratio 0. One that could not run here (skipped) is left out."""
    records = _records(results)
    found = []
    for (key, name, pass_name), record in records.items():
        if pass_name != PASSES[0] or "path" not in record or record["status"] == "skipped":
            continue
        ours = [records.get((key, name, p)) for p in PASSES]
        base = [records.get((key, BASE, p)) for p in PASSES]
        failed = [o["status"] if o else "missing" for o in ours if not _ok(o)]
        if failed:
            found.append((key, name, record["path"], dict.fromkeys(PASSES, 0.0),
                          f"{source}: {failed[0]}"))
        elif all(_ok(b) for b in base):
            ratios = {p: b["median_ms"] / o["median_ms"] for p, o, b in zip(PASSES, ours, base)}
            found.append((key, name, record["path"], ratios, source))
        elif all(o.get("ratio_vs_nn") and (key, p) in bridge for p, o in zip(PASSES, ours)):
            ratios = {p: o["ratio_vs_nn"] / bridge[(key, p)] for p, o in zip(PASSES, ours)}
            found.append((key, name, record["path"], ratios, f"{source} via nn.GRU"))
    return found


def _table_key(candidate):
    """What a table row keys on: the path's kind, dtype, H, N and directions (T, I, layers
    and packing are not in a row: a row holds only where every size measured won)."""
    (T, N, I, H, layers, bidirectional, packed, dtype), _, path, _, _ = candidate
    kind = "replay" if path.get("replay") else "persistent"
    return kind, dtype, H, N, 2 if bidirectional else 1


def verdicts(all_candidates, margin):
    """{table key: {variant (the path as JSON): (won, worst ratio, candidates)}}: a variant
    wins a key where every measurement of it there (every size, file and pass) beat fused
    by margin; one loss anywhere, same-process or through nn.GRU, and it does not."""
    by_key = {}
    for candidate in all_candidates:
        variant = json.dumps(candidate[2], sort_keys=True)
        by_key.setdefault(_table_key(candidate), {}).setdefault(variant, []).append(candidate)
    result = {}
    for key, variants in by_key.items():
        result[key] = {}
        for variant, measured in variants.items():
            worst = min(min(c[3].values()) for c in measured)
            result[key][variant] = (worst >= 1 + margin, worst, measured)
    return result


def winners(all_candidates, margin):
    """{table key: (path, worst ratio)} for the keys some variant won: the one whose worst
    ratio is best."""
    best = {}
    for key, variants in verdicts(all_candidates, margin).items():
        won = [(worst, variant) for variant, (ok, worst, _) in variants.items() if ok]
        if won:
            worst, variant = max(won)
            best[key] = (json.loads(variant), worst)
    return best


def cpp_row(key, path, run):
    """The table row for one key, as C++ (an exact range: H..H, N..N)."""
    kind, dtype, H, N, D = key
    shapes = f'{{"{C10_DTYPES[dtype]}", {H}, {H}, {N}, {N}, {D}}}'
    if kind == "replay":
        return f'{{{shapes}, "{run}"}},'
    rows = path["rows_per_warp"] or 1
    return (f'{{{shapes}, PersistentForm::{FORMS[path["persistent"]]}, {rows}, '
            f'{str(path["mma"]).lower()}, {str(path["registers"]).lower()}, '
            f'{path["cluster_size"] or 8}, "{run}"}},')


def report(all_candidates, margin, run):
    """Every key and variant measured, won or lost (so that ranges can be merged only over
    sizes that won), then the C++ rows of the winners."""
    lines = ["| path | dtype | H | N | D | variant | verdict | worst ratio | measured at |",
             "|---|---|---:|---:|---:|---|---|---:|---|"]
    for key, variants in sorted(verdicts(all_candidates, margin).items()):
        kind, dtype, H, N, D = key
        for variant, (won, worst, measured) in sorted(variants.items()):
            where = "; ".join(
                f"T={c[0][0]} I={c[0][2]} L={c[0][4]}{' packed' if c[0][6] else ''} "
                f"{c[3]['fwd']:.2f}x/{c[3]['fwd+bwd']:.2f}x ({c[4]})" for c in measured)
            lines.append(f"| {kind} | {dtype} | {H} | {N} | {D} | {variant} | "
                         f"{'won' if won else 'lost'} | {worst:.2f}x | {where} |")
    rows = {"persistent": [], "replay": []}
    for key, (path, _) in sorted(winners(all_candidates, margin).items()):
        rows[key[0]].append(cpp_row(key, path, run))
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
    text = report(found, args.margin, args.run)
    print(text)
    return text


if __name__ == "__main__":
    main()
