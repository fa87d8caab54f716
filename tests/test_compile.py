"""torch.compile(fullgraph=True) traces the module with no graph break and equals eager;
the module also survives flatten_parameters, deepcopy, pickling and .to(dtype)."""
import copy
import io

import pytest
import torch
from torch import nn

import gru_cuda
from conftest import assert_close


class Tagger(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = gru_cuda.GRU(6, 8, num_layers=2, bidirectional=True, batch_first=True)
        self.head = torch.nn.Linear(16, 3)

    def forward(self, x, h0):
        out, h_n = self.gru(x, h0)
        return self.head(out), h_n


def test_compile_fullgraph_equals_eager(device):
    torch.manual_seed(41)
    model = Tagger().to(device)
    x = torch.randn(4, 9, 6, device=device, requires_grad=True)
    h0 = torch.randn(4, 4, 8, device=device)
    compiled = torch.compile(model, fullgraph=True, backend="inductor")
    eager_out, eager_h = model(x, h0)
    out, h_n = compiled(x, h0)
    assert_close(out, eager_out, torch.float32, "compiled output")
    assert_close(h_n, eager_h, torch.float32, "compiled h_n")
    g_eager = torch.autograd.grad(eager_out.sum(), [x] + list(model.parameters()))
    g_comp = torch.autograd.grad(out.sum(), [x] + list(model.parameters()))
    for a, b in zip(g_comp, g_eager):
        assert_close(a, b, torch.float32, "compiled gradient")


def test_deepcopy_pickle_and_to():
    torch.manual_seed(42)
    model = gru_cuda.GRU(3, 4, num_layers=2)
    x = torch.randn(5, 2, 3)
    expected, _ = model(x)
    model.flatten_parameters()  # nn.GRU's cuDNN step: here a no-op that must not break
    assert torch.equal(model(x)[0], expected)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    for clone in (copy.deepcopy(model), torch.load(buffer, weights_only=False)):
        assert torch.equal(clone(x)[0], expected)
    doubled = copy.deepcopy(model).to(torch.float64)
    assert doubled.weight_ih_l0.dtype == torch.float64
    assert_close(doubled(x.double())[0].float(), expected, torch.float32, "float64 copy")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_cpu_autocast_follows_nn_gru(dtype):
    """On the CPU autocast leaves nn.GRU and nn.GRUCell in their input's dtype: float32
    in, float32 out; a lower-precision input runs in its own dtype."""
    torch.manual_seed(43)
    ours, theirs = gru_cuda.GRU(8, 16), nn.GRU(8, 16)
    theirs.load_state_dict(ours.state_dict())
    cell, nn_cell = gru_cuda.GRUCell(8, 16), nn.GRUCell(8, 16)
    nn_cell.load_state_dict(cell.state_dict())
    x = torch.randn(5, 3, 8)
    expected, expected_h = theirs(x)
    with torch.autocast("cpu", dtype=dtype):
        out, h_n = ours(x)
        nn_out, _ = theirs(x)
        h = cell(x[0])
        low, _ = ours(x.to(dtype))
        nn_low, _ = theirs(x.to(dtype))
    assert out.dtype == h_n.dtype == h.dtype == nn_out.dtype == torch.float32
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(h_n, expected_h)
    torch.testing.assert_close(h, nn_cell(x[0]))
    assert low.dtype == nn_low.dtype == dtype
    assert (low.float() - nn_low.float()).norm() / nn_low.float().norm() < 2e-2


def test_compile_with_dynamic_shapes_matches_eager():
    """The meta kernel's checks work on symbolic sizes: one graph for several T and N."""
    torch.manual_seed(44)
    model = gru_cuda.GRU(8, 16, bidirectional=True)
    compiled = torch.compile(model, dynamic=True, fullgraph=True)
    for T, N in ((5, 3), (7, 2), (4, 6)):
        x = torch.randn(T, N, 8)
        for a, b in zip(compiled(x), model(x)):
            assert_close(a, b, torch.float32, f"dynamic T={T} N={N}")
