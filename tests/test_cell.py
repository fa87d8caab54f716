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
