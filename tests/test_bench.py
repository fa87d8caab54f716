"""Smoke tests of benchmarks/bench_gru.py: tiny sizes, 1-2 runs, on the CPU."""
import copy
import json

import pytest
import torch

from benchmarks import bench_gru
from benchmarks.contenders import BASELINE, Contender, Size, default_registry

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

    def fn(x, h0):
        out, h_n = gru(x, h0.unsqueeze(0))
        return out, h_n[0]
    return Contender(fn, list(gru.parameters()))


def _broken(problem):
    def fn(x, h0):
        raise RuntimeError("no kernel here")
    return Contender(fn, [])


def test_wrong_contender_is_refused_and_broken_one_skipped(capsys):
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
        assert r["status"] == "skipped" and "no kernel here" in r["reason"]
        assert "times_ms" not in r


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
