"""float16 and bfloat16 (gate math in float32) against float32, on every device."""
import pytest
import torch

import gru_cuda
from conftest import fwd_bwd, rel_err


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types_match_float32(device, dtype):
    torch.manual_seed(51)
    model = gru_cuda.GRU(40, 72, num_layers=2, bidirectional=True, device=device)
    x = torch.randn(30, 9, 40, device=device, requires_grad=True)
    hx = torch.randn(4, 9, 72, device=device, requires_grad=True)
    expected = fwd_bwd(model, x, hx)
    half = gru_cuda.GRU(40, 72, num_layers=2, bidirectional=True, device=device, dtype=dtype)
    half.load_state_dict(model.state_dict())
    xh = x.detach().to(dtype).requires_grad_()
    hh = hx.detach().to(dtype).requires_grad_()
    got = fwd_bwd(half, xh, hh)
    assert got[0].dtype == dtype
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < 1e-2, f"tensor {i}"
