"""The textbook reference equals nn.GRU (the original tutorial's check)."""
import pytest
import torch
from torch import nn

from gru_cuda import reference


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-6), (torch.float64, 1e-14)])
def test_reference_equals_nn_gru(dtype, atol):
    torch.manual_seed(21)
    gru = nn.GRU(6, 8, dtype=dtype)
    ref = reference.load_nn_gru_weights(reference.GRUReference(6, 8, dtype=dtype), gru)
    x = torch.randn(12, 4, 6, dtype=dtype)
    h0 = torch.randn(4, 8, dtype=dtype)
    out, h = ref(x, h0)
    expected_out, expected_h = gru(x, h0.unsqueeze(0))
    assert torch.allclose(out, expected_out, atol=atol)
    assert torch.allclose(h, expected_h[0], atol=atol)
    out0, _ = ref(x)
    assert torch.allclose(out0, gru(x)[0], atol=atol)


def test_reference_cell_equals_nn_gru_cell():
    torch.manual_seed(22)
    cell = nn.GRUCell(5, 7, dtype=torch.float64)
    ref = reference.load_nn_gru_weights(reference.GRUCellReference(5, 7, dtype=torch.float64), cell)
    x, h = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 7, dtype=torch.float64)
    assert torch.allclose(ref(x, h), cell(x, h), atol=1e-14)


def test_reference_loads_other_layers_and_directions():
    torch.manual_seed(23)
    gru = nn.GRU(4, 5, num_layers=2, bidirectional=True, bias=False, dtype=torch.float64)
    x = torch.randn(6, 2, 4, dtype=torch.float64)
    out, _ = gru(x)
    fwd = reference.load_nn_gru_weights(reference.GRUReference(4, 5, dtype=torch.float64), gru)
    bwd = reference.load_nn_gru_weights(reference.GRUReference(4, 5, dtype=torch.float64), gru,
                                        reverse=True)
    layer0 = torch.cat([fwd(x)[0], bwd(x.flip(0))[0].flip(0)], 2)
    fwd1 = reference.load_nn_gru_weights(reference.GRUReference(10, 5, dtype=torch.float64), gru,
                                         layer=1)
    assert torch.allclose(fwd1(layer0)[0], out[..., :5], atol=1e-14)
