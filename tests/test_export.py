"""Tracing, export and compilation keep the module trainable, as with nn.GRU."""
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import gru_cuda
from conftest import assert_close


class Tagger(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = gru_cuda.GRU(3, 4, num_layers=2, bidirectional=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        out, h_n = self.gru(x)
        return self.head(out), h_n


def grads_of(fn, model, x):
    out, h_n = fn(x)
    return torch.autograd.grad(out.sum() + h_n.sum(), list(model.parameters()))


def frozen_under_no_grad(kind, model, x):
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on Python conditions
        if kind == "trace":
            return torch.jit.trace(model, (x,))  # its check_trace reruns and compares
        return torch.export.export(model, (x,)).module()


@pytest.mark.parametrize("kind", ["trace", "export"])
def test_traced_or_exported_under_no_grad_then_trained(kind):
    """Nothing the op needs is frozen from the grad mode at trace time."""
    torch.manual_seed(71)
    model = Tagger()
    x = torch.randn(5, 2, 3)
    frozen = frozen_under_no_grad(kind, model, x)
    x2 = torch.randn(5, 2, 3)
    for a, b in zip(frozen(x2), model(x2)):
        assert_close(a, b, torch.float32, f"{kind} output")
    for a, b in zip(grads_of(frozen, model, x2), grads_of(model, model, x2)):
        assert_close(a, b, torch.float32, f"{kind} gradient")


def test_packed_sequence_under_torch_compile():
    torch.manual_seed(72)
    gru = gru_cuda.GRU(3, 4, bidirectional=True)
    lengths = torch.tensor([5, 2, 4])

    def run(x):
        out, h_n = gru(pack_padded_sequence(x, lengths, enforce_sorted=False))
        return pad_packed_sequence(out)[0], h_n

    x = torch.randn(5, 3, 3, requires_grad=True)
    compiled = torch.compile(run)
    got, expected = compiled(x), run(x)
    for a, b in zip(got, expected):
        assert_close(a, b, torch.float32, "compiled packed output")
    leaves = [x, *gru.parameters()]
    for a, b in zip(torch.autograd.grad(sum(t.sum() for t in got), leaves),
                    torch.autograd.grad(sum(t.sum() for t in expected), leaves)):
        assert_close(a, b, torch.float32, "compiled packed gradient")


class PackedTagger(nn.Module):
    def __init__(self, gru):
        super().__init__()
        self.gru = gru

    def forward(self, data, batch_sizes, sorted_indices, unsorted_indices):
        packed = nn.utils.rnn.PackedSequence(data, batch_sizes, sorted_indices, unsorted_indices)
        out, h_n = self.gru(packed)
        return out.data, h_n


@pytest.mark.parametrize("gru_class", [nn.GRU, gru_cuda.GRU])
def test_trace_of_packed_input_without_hx_follows_the_batch_size(gru_class):
    """The zero state takes its batch size from batch_sizes, not a traced constant."""
    torch.manual_seed(72)
    model = PackedTagger(gru_class(4, 4))

    def packed(batch):
        lengths = torch.randint(1, 6, (batch,))
        lengths[0] = 5
        p = pack_padded_sequence(torch.randn(5, batch, 4), lengths, enforce_sorted=False)
        return tuple(p)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, packed(4), check_trace=False)
    other = packed(3)
    for a, b in zip(traced(*other), model(*other)):
        torch.testing.assert_close(a, b)
