"""Smoke tests of benchmarks/bench_gru.py: tiny sizes, 1-2 runs, on the CPU."""
import argparse
import contextlib
import copy
import json
import time

import pytest
import torch

from benchmarks import bench_gru, measured_rows, report
from benchmarks.measured_rows import PASSES
from benchmarks.contenders import (BASELINE, BASELINE_GRAPHED, BASELINE_TF32, Contender, Size,
                                   Unavailable, build_fused, default_registry, make_problem)

TINY = ["--device", "cpu", "--sizes", "4,2,8,8", "--repeats", "2", "--warmup", "1"]


def test_runs_checks_and_writes_results(tmp_path, capsys):
    results = bench_gru.main(TINY + ["--no-compile", "--out", str(tmp_path)])
    stdout = capsys.readouterr().out
    assert stdout.startswith("parity vs nn.GRU: max abs diff")
    assert "| fused |" in stdout

    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["measurements"] == json.loads(json.dumps(results["measurements"]))
    rows = saved["measurements"]
    assert {r["contender"] for r in rows} == {"fused", BASELINE, "reference"}
    assert {r["pass"] for r in rows} == {"fwd", "fwd+bwd"}
    for r in rows:
        assert r["status"] == "ok" and r["parity"]["ok"], r
        assert len(r["times_ms"]) == 2 and all(t > 0 for t in r["times_ms"])
        assert r["min_ms"] <= r["median_ms"] <= r["max_ms"] and r["tokens_per_s"] > 0
        assert r["ratio_vs_nn"] > 0
    assert all(r["ratio_vs_nn"] == 1.0 for r in rows if r["contender"] == BASELINE)
    assert saved["machine"]["torch"] == torch.__version__ and saved["machine"]["threads"] >= 1
    for name in ("results.md", "tokens_per_s_float32.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| fused |" in (tmp_path / "results.md").read_text()


def _wrong(problem):
    """nn.GRU with one weight perturbed: runs fine, gives wrong numbers."""
    gru = copy.deepcopy(problem.source)
    with torch.no_grad():
        gru.weight_hh_l0[0, 0] += 0.5
    return Contender(gru, list(gru.parameters()))


def _broken(problem):
    def fn(x, h0):
        raise RuntimeError("no kernel here")
    return Contender(fn, [])


def test_wrong_contender_is_refused_and_broken_one_failed(capsys):
    registry = {**default_registry(), "wrong": _wrong, "broken": _broken}
    results = bench_gru.main(TINY + ["--repeats", "1", "--contenders", "nn.GRU,wrong,broken"],
                             registry=registry)
    first_line = capsys.readouterr().out.splitlines()[0]
    assert "REFUSED" in first_line and "wrong" in first_line
    by_name = {}
    for r in results["measurements"]:
        by_name.setdefault(r["contender"], []).append(r)
    assert all(r["status"] == "ok" for r in by_name[BASELINE])
    for r in by_name["wrong"]:
        assert r["status"] == "refused" and "relative error" in r["reason"]
        assert "times_ms" not in r and r["ratio_vs_nn"] is None
    for r in by_name["broken"]:
        assert r["status"] == "failed" and "no kernel here" in r["reason"]
        assert "times_ms" not in r
    assert len(bench_gru.failures(results)) == 4  # both passes of both
    assert bench_gru.failures(bench_gru.main(TINY + ["--repeats", "1", "--no-compile"])) == []


def test_scaling_preset_draws_the_curves(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_gru, "scaling_sizes", lambda device: [
        Size(2, 64, 4, 4), Size(6, 64, 4, 4), Size(100, 1, 4, 4), Size(100, 2, 4, 4)])
    results = bench_gru.main(["--device", "cpu", "--scaling", "--repeats", "1",
                              "--warmup", "0", "--out", str(tmp_path)])
    assert {r["contender"] for r in results["measurements"]} == {"fused", BASELINE}
    assert (tmp_path / "scaling.png").stat().st_size > 0


def test_plan_compiles_only_the_first_size_by_default():
    args = bench_gru.parse_args(["--device", "cpu", "--sizes", "4,2,8,8;5,3,8,8"])
    names = [names for _, _, names in bench_gru.plan(args)]
    assert "compiled reference" in names[0] and "compiled reference" not in names[1]
    args = bench_gru.parse_args(["--device", "cpu", "--sizes", "4,2,8,8", "--no-compile"])
    assert "compiled reference" not in bench_gru.plan(args)[0][2]
    assert bench_gru.parse_args(["--device", "cpu"]).repeats >= 5


@pytest.mark.parametrize("text", ["1,2,3", "1,2,3,0", "a,b,c,d", ""])
def test_bad_sizes_are_rejected(text):
    with pytest.raises(SystemExit):
        bench_gru.parse_args(["--sizes", text])


def test_gpu_grid_and_tf32_baseline_only_where_it_applies():
    grid = bench_gru.default_grid("cuda")
    assert len(grid) == 22 and all(s.T == 100 and s.I == s.H for s in grid)
    assert {(s.N, s.H) for s in grid} == \
        {(n, h) for n in (1, 8, 64, 256) for h in (128, 256, 512, 1024)} | \
        {(n, h) for n in (8, 64, 256) for h in (1536, 2048)}
    args = bench_gru.parse_args(["--device", "cpu", "--sizes", "4,2,8,8"])
    assert BASELINE_TF32 not in args.contenders  # TF32 is a cuDNN setting
    args.device = "cuda"  # plan only: no GPU needed
    args.contenders = list(default_registry())
    args.dtypes = ["float32", "bfloat16"]
    by_dtype = {dtype: names for _, dtype, names in bench_gru.plan(args)}
    assert BASELINE_TF32 in by_dtype["float32"] and BASELINE_TF32 not in by_dtype["bfloat16"]
    problem = make_problem(Size(3, 2, 4, 4), "cpu", torch.float32)
    with pytest.raises(Unavailable, match="float32 on CUDA only"):
        default_registry()[BASELINE_TF32](problem)


def test_tf32_column_and_looser_tolerance():
    rows = [{"size": {"T": 1, "N": 1, "I": 1, "H": 1}, "dtype": "float32", "pass": "fwd",
             "contender": name, "status": "ok", "median_ms": ms, "min_ms": ms, "max_ms": ms,
             "tokens_per_s": 1.0} for name, ms in (("fused", 1.0), (BASELINE, 2.0),
                                                   (BASELINE_TF32, 4.0))]
    bench_gru._add_ratios(rows)
    assert rows[0]["ratio_vs_nn"] == 2.0 and rows[0]["ratio_vs_nn_tf32"] == 4.0
    table = report.markdown_table(rows)
    assert "vs nn.GRU TF32" in table and "| 2.00x | 4.00x |" in table
    assert "| 1, 1, padded |" in table
    problem = make_problem(Size(3, 2, 4, 4), "cpu", torch.float32)
    off = [problem.truth["output"] * 1.001, problem.truth["h_n"]]
    assert bench_gru.check_parity([problem.truth["output"], problem.truth["h_n"]], problem,
                                  "fwd")["ok"]
    assert not bench_gru.check_parity(off, problem, "fwd")["ok"]
    assert bench_gru.check_parity(off, problem, "fwd", tol=2e-2)["ok"]


def test_packed_and_bidirectional_layers_are_checked_and_timed(tmp_path):
    results = bench_gru.main(["--device", "cpu", "--sizes", "6,3,4,5,L2,bidir,packed;5,2,4,4,packed",
                              "--repeats", "2", "--warmup", "0", "--no-compile",
                              "--out", str(tmp_path)])
    rows = results["measurements"]
    first = [r for r in rows if r["size"]["layers"] == 2]
    assert {r["contender"] for r in first if r["status"] == "ok"} == {"fused", BASELINE}
    assert all(r["status"] == "skipped" and "one layer, one direction" in r["reason"]
               for r in first if r["contender"] == "reference")
    assert all(r["parity"]["ok"] for r in rows if r["status"] == "ok")
    problem = make_problem(Size(5, 2, 4, 4, packed=True), "cpu", torch.float32)
    assert problem.tokens == int(problem.lengths.sum()) and int(problem.lengths.max()) == 5
    assert "| 2, 2, packed |" in (tmp_path / "results.md").read_text()


def test_sizes_parse_layers_directions_and_packing():
    size, = bench_gru.parse_sizes("60,32,128,128,L2,bidir,packed")
    assert (size.layers, size.bidirectional, size.packed) == (2, True, True)
    assert size.label() == "T=60 N=32 I=128 H=128 L=2 bidir packed"
    for bad in ("1,2,3,4,X", "1,2,3,4,L0", "1,2,3,4,L2,L3"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench_gru.parse_sizes(bad)


def test_a_contenders_context_covers_its_backward_too():
    """The persistent contender's switch must hold while the backward runs, or
    'fwd+bwd' would time the per-step backward under its name."""
    problem = make_problem(Size(3, 2, 4, 4), "cpu", torch.float32)
    inside, seen = [False], []

    @contextlib.contextmanager
    def context(pass_name):
        inside[0] = True
        yield
        inside[0] = False

    def fn(x, h0):
        out, h_n = problem.source(x, h0)
        out.register_hook(lambda grad: seen.append(("backward", inside[0])))
        seen.append(("forward", inside[0]))
        return out, h_n
    contender = Contender(fn, list(problem.source.parameters()), context=context)
    bench_gru.make_call(contender, problem, "fwd+bwd")()
    assert seen == [("forward", True), ("backward", True)]


def test_cuda_only_contenders_are_skipped_on_the_cpu():
    problem = make_problem(Size(3, 2, 4, 4), "cpu", torch.float32)
    for name in (BASELINE_GRAPHED, "persistent", "persistent mma", "persistent cluster",
                 "persistent cluster 16", "persistent cluster mma", "replayed", "direct GEMMs",
                 "direct GEMMs TF32"):
        with pytest.raises(Unavailable):
            default_registry()[name](problem)


def test_decoding_step_benchmark_checks_and_times(tmp_path):
    from benchmarks import bench_step
    rows = bench_step.main(["--cases", "1,8;2,4", "--steps", "3", "--rounds", "2",
                            "--out", str(tmp_path)])
    assert [(r["N"], r["H"], r["kind"]) for r in rows] == [
        (1, 8, "GRUCell"), (1, 8, "GRU T=1"), (2, 4, "GRUCell"), (2, 4, "GRU T=1")]
    assert all(r["gru_cuda_us"] > 0 and r["nn_us"] > 0 for r in rows)
    assert "| GRUCell |" in (tmp_path / "results.md").read_text()


def test_floor_of_a_layer_is_its_flops_at_the_rate_plus_its_barriers():
    from benchmarks.floor_probe import floors
    rates = {"ffma_tflops": 50.0, "mma_tf32_tflops": 400.0, "mma_bf16_tflops": 800.0,
             "grid_barrier_us": 1.5, "cluster8_barrier_us": 0.25, "cluster16_barrier_us": None}
    got = floors(100, 64, 512, rates)
    flops = 2 * 3 * 512 * 1024 * 64 * 100  # 20.1 GFLOP a forward
    forward, both = got[("float32", "grid")]
    assert forward == pytest.approx(flops / 50e12 * 1e3 + 100 * 1.5e-3)
    assert both == pytest.approx(3 * flops / 50e12 * 1e3 + 200 * 1.5e-3)
    assert got[("bfloat16", "cluster 8")][0] == pytest.approx(flops / 800e12 * 1e3 + 0.025)
    assert ("float32", "cluster 16") not in got  # a probe that did not run: no floor


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the probes run on a CUDA GPU")
def test_floor_probes_measure_plausible_values():
    from benchmarks.floor_probe import probe
    assert 0.1 < probe("grid_barrier_us", 3) < 100
    assert 1 < probe("ffma_tflops", 3) < 1000
    with pytest.raises(RuntimeError, match="no floor probe 'nope'"):
        torch.ops.gru_cuda.floor_probe("nope", 10)


def _pathed(path, delay_s):
    """gru_cuda's fused layer under a path's name, delay_s slower a call (a contender
    that loses) or not (one that ties or wins)."""
    def build(problem):
        fused = build_fused(problem)

        def fn(x, h0):
            time.sleep(delay_s)
            return fused.fn(x, h0)
        return Contender(fn, fused.params, path=path)
    return build


def test_measured_rows_name_the_paths_that_beat_fused_in_both_passes(tmp_path, monkeypatch):
    """The benchmark records each contender's path; measured_rows keeps a path where it
    beat fused by the margin in both passes, the best persistent variant of several, and
    prints its table row."""
    grid = {"persistent": "grid", "rows_per_warp": 2, "mma": False, "registers": False,
            "cluster_size": 0}
    registry = {**default_registry(), "slow grid": _pathed({**grid, "rows_per_warp": 4}, 0.02),
                "same grid": _pathed(grid, 0.0), "slow replay": _pathed({"replay": True}, 0.02)}
    args = ["--device", "cpu", "--sizes", "4,2,8,8", "--repeats", "3", "--warmup", "1",
            "--contenders", "fused,slow grid,same grid,slow replay", "--out", str(tmp_path / "a")]
    results = bench_gru.main(args, registry=registry)
    paths = {r["contender"]: r.get("path") for r in results["measurements"]}
    assert paths["same grid"] == grid and paths["fused"] is None
    data = json.loads((tmp_path / "a" / "results.json").read_text())
    data["config"]["device"] = "cuda"  # as a GPU check's would say
    # Make fused the slow one: both grid variants now win, the replay too.
    for r in data["measurements"]:
        if r["contender"] == "fused":
            r["median_ms"] *= 1000
    (tmp_path / "a" / "results.json").write_text(json.dumps(data))
    text = measured_rows.main([str(tmp_path), "--run", "test-run"])
    persistent = text.split("kPersistentDefaults (1 sizes won):")[1].split("kReplayDefaults")[0]
    assert '{{"Float", 8, 8, 2, 2, 1}, PersistentForm::kGrid, 2, false, false, 8, "test-run"},' \
        in persistent
    assert text.count("| persistent | float32 | 8 | 2 | 1 |") == 2  # both variants won
    assert text.count("| won |") == 3
    assert "kReplayDefaults (1 sizes won):" in text and '{{"Float", 8, 8, 2, 2, 1}, "test-run"},' \
        in text
    # Where nothing beats fused, no row.
    for r in data["measurements"]:
        if r["contender"] == "fused":
            r["median_ms"] /= 1e6
    (tmp_path / "a" / "results.json").write_text(json.dumps(data))
    text = measured_rows.main([str(tmp_path), "--run", "test-run"])
    assert "kPersistentDefaults (0 sizes won):" in text and "kReplayDefaults (0 sizes won):" in text
    assert text.count("| lost |") == 3


def test_measured_rows_bridge_a_file_without_fused_through_nn_gru():
    """A variants file ran the path beside nn.GRU only: its gain over fused is its ratio
    to nn.GRU over fused's ratio to nn.GRU in another file."""
    def record(contender, pass_name, ratio, path=None):
        r = {"size": {"T": 100, "N": 8, "I": 256, "H": 256}, "dtype": "bfloat16",
             "contender": contender, "pass": pass_name, "status": "ok", "parity": {"ok": True},
             "median_ms": 1.0, "ratio_vs_nn": ratio}
        return {**r, "path": path} if path else r
    local = {"persistent": "local", "rows_per_warp": 0, "mma": False, "registers": True,
             "cluster_size": 0}
    main_run = {"measurements": [record("fused", p, 0.5) for p in PASSES]}
    variants = {"measurements": [record("persistent", "fwd", 1.5, local),
                                 record("persistent", "fwd+bwd", 0.55, local)]}
    bridge = measured_rows.fused_ratios([main_run, variants])
    (found,) = measured_rows.candidates(variants, "registers", bridge)
    assert found[3] == pytest.approx({"fwd": 3.0, "fwd+bwd": 1.1}) and found[4].endswith("nn.GRU")
    ((key, (path, worst)),) = measured_rows.winners([found], margin=0.05).items()
    assert key == ("persistent", "bfloat16", 256, 8, 1) and worst == pytest.approx(1.1)
    assert measured_rows.cpp_row(key, path, "r") == \
        '{{"BFloat16", 256, 256, 8, 8, 1}, PersistentForm::kLocal, 1, false, true, 8, "r"},'
    assert measured_rows.winners([found], margin=0.2) == {}  # fwd+bwd gains only 10%
    # The same variant lost in the same process elsewhere, or failed parity there: no row.
    main_run["measurements"] += [{**record("persistent", p, 0.45, local), "median_ms": 1.1}
                                 for p in PASSES]
    lost = measured_rows.candidates(main_run, "bench", bridge)
    assert [c[3] for c in lost] == [pytest.approx({"fwd": 1 / 1.1, "fwd+bwd": 1 / 1.1})]
    assert measured_rows.winners([found, *lost], margin=0.05) == {}
    refused = {"measurements": [{**record("persistent", p, 9.0, local), "status": "refused",
                                 "parity": {"ok": False}} for p in PASSES]}
    (failed,) = measured_rows.candidates(refused, "bench", bridge)
    assert failed[3] == {"fwd": 0.0, "fwd+bwd": 0.0} and failed[4] == "bench: refused"
    assert measured_rows.winners([found, failed], margin=0.05) == {}
    text = measured_rows.report([found, failed], 0.05, "r")
    assert "| lost | 0.00x |" in text and "kPersistentDefaults (0 sizes won):" in text
