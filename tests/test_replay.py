"""Graph replay of the CUDA per-step loop (gru_cuda.replay): the cache's bookkeeping on any
machine (a C++ test over csrc/replay/replay_cache.h); replay against the eager path, the
cache's hits, misses and bounds, and a user's own capture on a GPU."""
import os
import shutil
import subprocess
import sys

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import gru_cuda
from conftest import fwd_bwd
from gru_cuda import graph_replay

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_gpu = pytest.mark.skipif(not (torch.cuda.is_available() and gru_cuda.has_cuda_kernels()),
                               reason="needs a CUDA GPU and the CUDA kernels")


def test_cache_bookkeeping(tmp_path):
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    binary = tmp_path / "test_replay_cache"
    subprocess.run([compiler, "-std=c++17", "-O1", "-Wall", "-I", os.path.join(ROOT, "csrc"),
                    os.path.join(ROOT, "tests", "cpp", "test_replay_cache.cpp"), "-o",
                    str(binary)], check=True)
    run = subprocess.run([str(binary)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout


def test_switch_and_its_environment_variable():
    previous = gru_cuda.set_replay(True)
    try:
        with gru_cuda.replay("always"):
            assert gru_cuda.set_replay("always") == "always"
            with pytest.raises(RuntimeError, match="inside"):
                with gru_cuda.replay(False):
                    raise RuntimeError("inside")
            assert gru_cuda.set_replay("always") == "always"  # restored after the raise
        assert gru_cuda.set_replay(True) is True
        with pytest.raises(ValueError, match="replay mode"):
            gru_cuda.set_replay("sometimes")
    finally:
        gru_cuda.set_replay(previous)
    environment = {k: v for k, v in os.environ.items() if k != "GRU_CUDA_REPLAY"}
    for value, mode in [("1", True), ("on", True), ("always", "always"), ("0", False),
                        ("off", False), ("auto", "auto"), ("", "auto"), (None, "auto")]:
        read = subprocess.run(
            [sys.executable, "-c", "import gru_cuda; print(repr(gru_cuda.set_replay(False)))"],
            capture_output=True, text=True, check=True,
            env=environment if value is None else {**environment, "GRU_CUDA_REPLAY": value})
        assert read.stdout.strip() == repr(mode)


def test_an_unknown_environment_value_is_an_error():
    done = subprocess.run(
        [sys.executable, "-c", "import gru_cuda; gru_cuda.set_replay(True)"],
        capture_output=True, text=True, env={**os.environ, "GRU_CUDA_REPLAY": "yes"})
    assert done.returncode != 0
    assert "GRU_CUDA_REPLAY must be 0, off, 1, on, always or auto, got 'yes'" in done.stderr


def test_auto_mode_replays_nothing_on_the_cpu():
    """Auto mode replays where a GPU run measured it faster: never on the CPU, whose loops
    then run the eager addressing (the CPU's replay runs do not move)."""
    torch.manual_seed(72)
    model = gru_cuda.GRU(3, 4)
    before = gru_cuda.graph_replay.counts()["cpu_runs"]
    with gru_cuda.replay("auto"):
        model(torch.randn(5, 2, 3))[0].sum().backward()
    assert gru_cuda.graph_replay.counts()["cpu_runs"] == before
    with gru_cuda.replay(True):
        model(torch.randn(5, 2, 3))
    assert gru_cuda.graph_replay.counts()["cpu_runs"] == before + 1


@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["D1", "D2"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_cpu_runs_the_replay_addressing_bitwise(packed, bidirectional, dtype):
    """On the CPU the switch routes every loop through the offsets and call addresses a
    replayed graph's kernels read: the same numbers, forward, backward and inference."""
    torch.manual_seed(70)
    T, N, H = 7, 4, 5
    model = gru_cuda.GRU(6, H, bidirectional=bidirectional, dtype=dtype)
    x = torch.randn(T, N, 6, dtype=dtype, requires_grad=True)
    hx = torch.randn(2 if bidirectional else 1, N, H, dtype=dtype, requires_grad=True)
    lengths = torch.tensor([7, 5, 5, 2])

    def run():
        inp = pack_padded_sequence(x, lengths) if packed else x
        out, h_n = model(inp, hx)
        data = out.data if packed else out
        loss = (data.float() * torch.linspace(-1, 1, data.shape[-1])).sum() + h_n.float().sum()
        with torch.no_grad():
            inference = model(inp, hx)[0]
        inference = inference.data if packed else inference
        return [data, h_n, inference, *torch.autograd.grad(loss, [x, hx, *model.parameters()])]

    expected = run()
    before = graph_replay.counts()
    with gru_cuda.replay(True):
        got = run()
    after = graph_replay.counts()
    assert after["cpu_runs"] - before["cpu_runs"] == 3  # forward, inference, backward
    assert {k: after[k] - before[k] for k in ("hits", "misses", "captures")} == \
        {"hits": 0, "misses": 0, "captures": 0}  # no cache on the CPU
    for i, (g, e) in enumerate(zip(got, expected)):
        assert torch.equal(g, e), i


# On a GPU. Each test starts from an empty cache with the persistent kernels off, so that
# every layer takes the per-step path and the counts are exact.

@pytest.fixture
def fresh_cache():
    graph_replay.clear()
    with gru_cuda.persistent(False):
        yield
    graph_replay.clear()


def delta(before):
    after = graph_replay.counts()
    return {k: after[k] - before[k] for k in ("hits", "misses", "captures", "evictions",
                                              "capped", "failed")}


def make_case(bidirectional, dtype, T=9, N=4, I=6, H=10, seed=71):  # noqa: E741
    torch.manual_seed(seed)
    model = gru_cuda.GRU(I, H, bidirectional=bidirectional, device="cuda", dtype=dtype)
    D = 2 if bidirectional else 1
    x = torch.randn(T, N, I, device="cuda", dtype=dtype, requires_grad=True)
    hx = torch.randn(D, N, H, device="cuda", dtype=dtype, requires_grad=True)
    lengths = torch.tensor([T, T - 2, T - 2, 1][:N])
    return model, x, hx, lengths


def run_case(model, x, hx, packed, lengths):
    """Output, h_n and every gradient, padded or packed."""
    if not packed:
        return fwd_bwd(model, x, hx)
    seq = pack_padded_sequence(x, lengths, enforce_sorted=True)
    out, h_n = model(seq, hx)
    loss = (out.data.float() * torch.linspace(-1, 1, out.data.shape[-1], device="cuda")).sum() \
        + h_n.float().sum()
    return [out.data, h_n, *torch.autograd.grad(loss, [x, hx, *model.parameters()])]


@needs_gpu
@pytest.mark.parametrize("packed", [False, True], ids=["padded", "packed"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["D1", "D2"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_replay_equals_eager_bitwise(fresh_cache, packed, bidirectional, dtype):
    model, x, hx, lengths = make_case(bidirectional, dtype)
    expected = run_case(model, x, hx, packed, lengths)
    before = graph_replay.counts()
    with gru_cuda.replay("always"):
        captured = run_case(model, x, hx, packed, lengths)  # captures, then replays
        assert delta(before) == {"hits": 0, "misses": 2, "captures": 2, "evictions": 0,
                                 "capped": 0, "failed": 0}
        replayed = run_case(model, x, hx, packed, lengths)
        assert delta(before)["hits"] == 2  # forward and backward loops
    assert len(expected) == 4 + len(list(model.parameters()))
    for i, (c, r, e) in enumerate(zip(captured, replayed, expected)):  # output, h_n, grads
        assert torch.equal(c, e), i
        assert torch.equal(r, e), i


@needs_gpu
def test_new_inputs_and_weights_updated_in_place_replay_right(fresh_cache):
    model, x, hx, lengths = make_case(True, torch.float32, T=20, N=5, H=32)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = graph_replay.counts()
    with gru_cuda.replay(True):
        for call in range(4):
            x = torch.randn_like(x).requires_grad_()
            hx = torch.randn_like(hx).requires_grad_()
            got = run_case(model, x, hx, False, lengths)
            with gru_cuda.replay(False):
                expected = run_case(model, x, hx, False, lengths)
            for g, e in zip(got, expected):
                assert torch.equal(g, e), call
            optimizer.zero_grad()
            out, h_n = model(x, hx)
            (out.sum() + h_n.sum()).backward()
            optimizer.step()  # in place: W_hh keeps its address, the graphs read new values
    # Per call two forward loops and two backward loops, of one key each: each key runs
    # eagerly at its first call, is captured at its second and replayed after.
    assert delta(before) == {"hits": 12, "misses": 4, "captures": 2, "evictions": 0,
                             "capped": 0, "failed": 0}


@needs_gpu
def test_a_changed_shape_misses(fresh_cache):
    model, x, hx, _ = make_case(False, torch.float32)
    before = graph_replay.counts()
    with gru_cuda.replay("always"), torch.no_grad():
        model(x, hx)
        model(x[:-1], hx)
        model(x[:, :3], hx[:, :3])
        model(x, hx)
    assert delta(before) == {"hits": 1, "misses": 3, "captures": 3, "evictions": 0,
                             "capped": 0, "failed": 0}


@needs_gpu
def test_the_cache_stays_bounded_and_memory_does_not_grow(fresh_cache):
    model, x, hx, _ = make_case(False, torch.float32, T=40, N=8, H=64)
    with gru_cuda.replay("always"), torch.no_grad():
        for T in range(1, 31):  # 30 shapes: more than the 16 entries the cache holds
            model(x[:T], hx)
        assert graph_replay.counts()["entries"] == 16
        model(x, hx)
        torch.cuda.synchronize()
        baseline = torch.cuda.memory_allocated()
        hits = graph_replay.counts()["hits"]
        for _ in range(1000):
            out, h_n = model(x, hx)
        torch.cuda.synchronize()
        assert graph_replay.counts()["hits"] == hits + 1000
        del out, h_n
        assert torch.cuda.memory_allocated() <= baseline
        # Evictions give back what their graphs held: cuBLAS's workspace (32 MiB on
        # Hopper) included, which a capture stream of its own per graph left cached for
        # a stream gone. Three sweeps of 30 shapes evict 40 graphs or more.
        graph_replay.clear()
        torch.cuda.synchronize()
        reserved = torch.cuda.memory_reserved()
        evictions = graph_replay.counts()["evictions"]
        for _ in range(3):
            for T in range(1, 31):
                model(x[:T], hx)
        assert graph_replay.counts()["evictions"] - evictions >= 40
        graph_replay.clear()
        torch.cuda.synchronize()
        assert torch.cuda.memory_reserved() <= reserved + 128 * 2**20


@needs_gpu
def test_a_layer_that_keeps_changing_shape_stops_capturing(fresh_cache):
    model, x, hx, _ = make_case(False, torch.float32, T=12)
    before = graph_replay.counts()
    with gru_cuda.replay(True), torch.no_grad():
        for T in range(1, 13):
            model(x[:T], hx)
            model(x[:T], hx)
    counts = delta(before)
    assert counts["captures"] == 8 and counts["capped"] == 4


@needs_gpu
def test_a_users_graph_capture_takes_the_steps_eagerly(fresh_cache):
    model, x, hx, _ = make_case(True, torch.float32, T=10, N=3, H=16)
    static_x = x.detach().clone()
    with gru_cuda.replay(True), torch.no_grad():
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up: eager, capture, replay
                model(static_x, hx)
        torch.cuda.current_stream().wait_stream(side)
        before = graph_replay.counts()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out, _ = model(static_x, hx)
        assert delta(before)["misses"] == 0 and delta(before)["hits"] == 0
        static_x.copy_(torch.randn_like(static_x))
        graph.replay()
        torch.cuda.synchronize()
        with gru_cuda.replay(False):
            expected, _ = model(static_x, hx)
    assert torch.equal(static_out, expected)


@needs_gpu
def test_a_changed_matmul_precision_never_replays_a_stale_graph(fresh_cache):
    model, x, hx, _ = make_case(False, torch.float32, T=6, N=3, H=64)
    previous = torch.backends.cuda.matmul.allow_tf32
    try:
        with gru_cuda.replay("always"), torch.no_grad():
            torch.backends.cuda.matmul.allow_tf32 = False
            model(x, hx)
            before = graph_replay.counts()
            torch.backends.cuda.matmul.allow_tf32 = True
            got, _ = model(x, hx)  # captured anew
            assert delta(before)["hits"] == 0 and delta(before)["captures"] == 1
            with gru_cuda.replay(False):
                expected, _ = model(x, hx)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    assert torch.equal(got, expected)
