"""gru_cuda.GRUCell against torch.nn.GRUCell."""
import pytest
import torch
from torch import nn

import gru_cuda
from conftest import assert_close


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("hx_given", [True, False])
def test_cell_matches_nn_gru_cell(device, dtype, bias, batched, hx_given):
    torch.manual_seed(31)
    ours = gru_cuda.GRUCell(5, 7, bias=bias, device=device, dtype=dtype)
    theirs = nn.GRUCell(5, 7, bias=bias, device=device, dtype=dtype)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    shape = (4,) if batched else ()
    x = torch.randn(*shape, 5, device=device, dtype=dtype, requires_grad=True)
    hx = torch.randn(*shape, 7, device=device, dtype=dtype, requires_grad=True) if hx_given else None
    results = []
    for module in (ours, theirs):
        h = module(x, hx)
        w = torch.randn(h.shape, generator=torch.Generator().manual_seed(1), dtype=dtype).to(device)
        leaves = [x] + ([hx] if hx_given else []) + list(module.parameters())
        results.append((h, torch.autograd.grad((h * w).sum(), leaves)))
    (h1, g1), (h2, g2) = results
    assert h1.shape == h2.shape
    assert_close(h1, h2, dtype, "h'")
    for i, (a, b) in enumerate(zip(g1, g2)):
        assert_close(a, b, dtype, f"gradient {i}")


def test_cell_same_seed_same_weights():
    torch.manual_seed(32)
    ours = gru_cuda.GRUCell(3, 4)
    torch.manual_seed(32)
    theirs = nn.GRUCell(3, 4)
    for k, v in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k


def test_calls_that_want_no_graph_run_below_autograd(monkeypatch):
    """The one-step fast path: without a graph to record, the modules call the op below
    autograd (its autograd layer is Python); with one, through it. Same numbers."""
    from gru_cuda import modules
    entered = []
    below_autograd = modules._below_autograd

    class Counted:
        def __enter__(self):
            entered.append(1)
            self.guard = below_autograd()
            return self.guard.__enter__()

        def __exit__(self, *exc):
            return self.guard.__exit__(*exc)

    monkeypatch.setattr(modules, "_below_autograd", Counted)
    torch.manual_seed(23)
    cell, gru = gru_cuda.GRUCell(3, 4), gru_cuda.GRU(3, 4)
    x, h = torch.randn(2, 3), torch.randn(2, 4)
    with torch.no_grad():
        fast_cell, (fast_out, _) = cell(x, h), gru(x[None], h[None])
    assert len(entered) == 2
    slow_cell, (slow_out, _) = cell(x, h), gru(x[None], h[None])
    assert len(entered) == 2 and slow_cell.requires_grad and slow_out.requires_grad
    assert torch.equal(fast_cell, slow_cell) and torch.equal(fast_out, slow_out)
