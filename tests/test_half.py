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


def test_float16_gemms_on_the_cpu_run_in_float32():
    """On the CPU the layer's float16 GEMMs run through float32 (counted: every one of them,
    forward and backward), and the result stays that of float32 rounded to float16."""
    torch.manual_seed(52)
    model = gru_cuda.GRU(24, 40, bidirectional=True)
    x = torch.randn(12, 5, 24, requires_grad=True)
    hx = torch.randn(2, 5, 40, requires_grad=True)
    expected = fwd_bwd(model, x, hx)
    half = gru_cuda.GRU(24, 40, bidirectional=True, dtype=torch.float16)
    half.load_state_dict(model.state_dict())
    before = torch.ops.gru_cuda.half_matmul_count()
    got = fwd_bwd(half, x.detach().half().requires_grad_(), hx.detach().half().requires_grad_())
    ran = torch.ops.gru_cuda.half_matmul_count() - before
    # the input projection, 12 steps' recurrent products a direction (forward and
    # backward), then the weight gradients (3 a direction) and the input's gradient
    assert ran == 1 + 2 * 2 * 12 + 2 * 3 + 1
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < 1e-2, f"tensor {i}"


def test_float16_vector_products_on_the_cpu_stay_in_float16_where_that_is_fast():
    """A batch of one (a decoding step) multiplies a row by transposed weights (x W^T):
    PyTorch's float16 GEMV is fast there, so its forward keeps float16 throughout; its
    backward (a row times W) goes through float32. Both match float32."""
    torch.manual_seed(53)
    cell = gru_cuda.GRUCell(24, 40, dtype=torch.float16)
    reference = torch.nn.GRUCell(24, 40)
    reference.load_state_dict(cell.state_dict())
    x = torch.randn(1, 24, dtype=torch.float16, requires_grad=True)
    h = torch.randn(1, 40, dtype=torch.float16, requires_grad=True)
    before = torch.ops.gru_cuda.half_matmul_count()
    got = cell(x, h)
    assert torch.ops.gru_cuda.half_matmul_count() == before
    got.float().sum().backward()
    assert torch.ops.gru_cuda.half_matmul_count() > before
    xf, hf = x.detach().float().requires_grad_(), h.detach().float().requires_grad_()
    expected = reference(xf, hf)
    expected.sum().backward()
    for a, b in ((got, expected), (x.grad, xf.grad), (h.grad, hf.grad)):
        assert rel_err(a, b) < 1e-2
