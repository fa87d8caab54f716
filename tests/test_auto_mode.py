"""Auto mode, the switches' default (CUDA only, skipped without a GPU): the persistent
kernels and graph replay run for exactly the shapes their tables of measured wins hold,
with the same results as the per-step path. Both tables are empty until a GPU run has
measured the paths; then these tests check the rows."""
import pytest
import torch

import gru_cuda
from conftest import fwd_bwd, rel_err
from gru_cuda import graph_replay, persistent_kernels

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

AUTO_SHAPES = [(64, 8, 1, torch.float32), (256, 8, 1, torch.float32),
               (256, 64, 1, torch.bfloat16), (512, 8, 2, torch.float32),
               (1024, 8, 1, torch.float32), (512, 256, 1, torch.float32)]


@pytest.mark.parametrize("H,N,D,dtype", AUTO_SHAPES)
def test_auto_mode_runs_persistent_where_measured_and_in_that_form(H, N, D, dtype):
    """Auto mode (the default) runs the persistent kernels for exactly the shapes the
    table of measured wins holds, in the form it names, with the per-step path's result;
    elsewhere it leaves the layer to the per-step path without counting a refusal."""
    torch.manual_seed(59)
    model = gru_cuda.GRU(16, H, bidirectional=D == 2, device="cuda", dtype=dtype)
    x = torch.randn(6, N, 16, device="cuda", dtype=dtype, requires_grad=True)
    hx = torch.randn(D, N, H, device="cuda", dtype=dtype, requires_grad=True)
    choice = persistent_kernels.measured_default(H, N, D, dtype)
    with gru_cuda.persistent(False), gru_cuda.replay(False):
        expected = fwd_bwd(model, x, hx)
    before = persistent_kernels.counts()
    with gru_cuda.persistent("auto"), gru_cuda.replay(False):
        got = fwd_bwd(model, x, hx)
    ran = {k: v - before[k] for k, v in persistent_kernels.counts().items()}
    if choice is None:
        assert all(v == 0 for v in ran.values()), ran
    else:
        assert ran["forward"] == 1 and ran["backward"] == 1 and ran["fallback"] == 0, ran
        if choice["form"] != "grid":
            assert ran[f"{choice['form']}_forward"] == 1, (choice, ran)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < tol, f"tensor {i}"


@pytest.mark.parametrize("H,N,D,dtype", AUTO_SHAPES + [(256, 8, 1, torch.float64)])
def test_auto_mode_replays_where_measured(H, N, D, dtype):
    """Auto mode replays the loops of exactly the shapes the table of measured wins holds
    (from the second call of a shape, as replay's on mode); elsewhere the cache is never
    asked. Replayed or not, the same numbers as eager."""
    torch.manual_seed(60)
    model = gru_cuda.GRU(16, H, bidirectional=D == 2, device="cuda", dtype=dtype)
    x = torch.randn(6, N, 16, device="cuda", dtype=dtype, requires_grad=True)
    with gru_cuda.persistent(False), gru_cuda.replay(False):
        expected = fwd_bwd(model, x)
    before = graph_replay.counts()
    with gru_cuda.persistent(False), gru_cuda.replay("auto"):
        for _ in range(3):
            got = fwd_bwd(model, x)
    after = graph_replay.counts()
    if graph_replay.measured_default(H, N, D, dtype):
        assert after["hits"] > before["hits"], (before, after)
    else:
        assert all(after[k] == before[k] for k in ("hits", "misses", "captures")), (before, after)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
