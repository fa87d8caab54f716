"""torch.jit.script of a model holding gru_cuda modules, as it works for nn.GRU."""
import io
import warnings
from typing import Optional

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import gru_cuda
from conftest import assert_close


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = gru_cuda.GRU(3, 4, num_layers=2, bidirectional=True, batch_first=True)
        self.cell = gru_cuda.GRUCell(8, 5)

    def forward(self, x):
        out, h_n = self.gru(x)
        return self.cell(out[:, -1]), h_n


class PackedModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = gru_cuda.GRU(3, 4, bidirectional=True)

    def forward(self, x: PackedSequence):
        out, h_n = self.gru(x)
        return out.data, h_n


def script(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit.script's deprecation notice
        return torch.jit.script(model)


@pytest.mark.parametrize("packed", [False, True])
def test_scripted_model_equals_eager_and_trains(device, packed):
    torch.manual_seed(81)
    model = (PackedModel() if packed else Model()).to(device)
    x = torch.randn(5, 3, 3, device=device)
    if packed:
        x = pack_padded_sequence(x, torch.tensor([5, 2, 4]), enforce_sorted=False)
    expected = model(x)
    g_expected = torch.autograd.grad(sum(t.sum() for t in expected), list(model.parameters()))
    scripted = script(model)
    got = scripted(x)
    for a, b in zip(got, expected):
        assert_close(a, b, torch.float32, "scripted output")
    g_got = torch.autograd.grad(sum(t.sum() for t in got), list(scripted.parameters()))
    for a, b in zip(g_got, g_expected):
        assert_close(a, b, torch.float32, "scripted gradient")

    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    for a, b in zip(torch.jit.load(buffer)(x), expected):
        assert_close(a, b, torch.float32, "saved and loaded")


def test_scripted_gru_keeps_the_state_dict():
    model = Model()
    scripted = script(model)
    assert set(scripted.state_dict()) == set(nn.ModuleDict({
        "gru": nn.GRU(3, 4, num_layers=2, bidirectional=True),
        "cell": nn.GRUCell(8, 5)}).state_dict())


class WithHidden(nn.Module):
    def __init__(self, gru):
        super().__init__()
        self.gru = gru

    def forward(self, x, hx: Optional[torch.Tensor] = None):
        return self.gru(x, hx)


class PackedWithHidden(WithHidden):
    def forward(self, x: PackedSequence, hx: Optional[torch.Tensor] = None):
        out, h_n = self.gru(x, hx)
        return out.data, h_n


def test_scripted_modules_check_their_arguments_as_eager_does():
    """The twins run the modules' own forward (layers.py): the same checks."""
    gru = script(WithHidden(gru_cuda.GRU(3, 4, num_layers=2)))
    with pytest.raises(Exception, match=r"Expected hidden size \(2, 2, 4\), got \[3, 2, 4\]"):
        gru(torch.randn(5, 2, 3), torch.randn(3, 2, 4))
    packed = pack_padded_sequence(torch.randn(5, 3, 3), torch.tensor([5, 2, 4]),
                                  enforce_sorted=False)
    one_layer = script(PackedWithHidden(gru_cuda.GRU(3, 4)))
    with pytest.raises(Exception, match=r"Expected hidden size \(1, 3, 4\), got \[2, 3, 4\]"):
        one_layer(packed, torch.randn(2, 3, 4))
    padded = script(WithHidden(gru_cuda.GRU(3, 4)))
    with pytest.raises(Exception, match="RNN input dtype .* does not match weight dtype"):
        padded(torch.randn(5, 2, 3, dtype=torch.float64))
    with pytest.raises(Exception, match="input.size\\(-1\\) must be equal to input_size"):
        padded(torch.randn(5, 2, 7))
    cell = script(WithHidden(gru_cuda.GRUCell(3, 4)))
    with pytest.raises(Exception, match="Input batch size 2 doesn't match hidden0 batch size 3"):
        cell(torch.randn(2, 3), torch.randn(3, 4))
