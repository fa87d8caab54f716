"""The textbook GRU in plain PyTorch, no fusion: one input and one hidden matrix per gate,
used by the tests as an oracle independent of the fused kernels and of
gru_cuda.plain_layer (it shares no code with either), and as the 'reference loop'
contender of the benchmark.

    r  = sigmoid(x W_xr + b_xr + h W_hr + b_hr)         reset gate
    z  = sigmoid(x W_xz + b_xz + h W_hz + b_hz)         update gate
    n  = tanh(x W_xn + b_xn + r * (h W_hn + b_hn))      candidate state
    h' = z * h + (1 - z) * n
"""
import math

import torch
from torch import nn

_GATES = ("r", "z", "n")  # nn.GRU's row blocks, in its order


class GRUCellReference(nn.Module):
    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        kw = {"device": device, "dtype": dtype}
        for g in _GATES:
            setattr(self, f"W_x{g}", nn.Parameter(torch.empty(input_size, hidden_size, **kw)))
            setattr(self, f"W_h{g}", nn.Parameter(torch.empty(hidden_size, hidden_size, **kw)))
            setattr(self, f"b_x{g}", nn.Parameter(torch.empty(hidden_size, **kw)))
            setattr(self, f"b_h{g}", nn.Parameter(torch.empty(hidden_size, **kw)))
        bound = 1.0 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def forward(self, x, h):
        r = torch.sigmoid(x @ self.W_xr + self.b_xr + h @ self.W_hr + self.b_hr)
        z = torch.sigmoid(x @ self.W_xz + self.b_xz + h @ self.W_hz + self.b_hz)
        n = torch.tanh(x @ self.W_xn + self.b_xn + r * (h @ self.W_hn + self.b_hn))
        return z * h + (1 - z) * n


class GRUReference(nn.Module):
    """One layer, one direction, time-major: (T, N, I) -> (output (T, N, H), h_T (N, H))."""

    def __init__(self, input_size, hidden_size, device=None, dtype=None):
        super().__init__()
        self.cell = GRUCellReference(input_size, hidden_size, device=device, dtype=dtype)

    def forward(self, inputs, h0=None):
        h = h0
        if h is None:
            h = inputs.new_zeros(inputs.shape[1], self.cell.hidden_size)
        outputs = []
        for x in inputs.unbind(0):
            h = self.cell(x, h)
            outputs.append(h)
        return torch.stack(outputs), h


@torch.no_grad()
def load_nn_gru_weights(reference, gru, layer=0, reverse=False):
    """Copy one layer and direction of an nn.GRU / nn.GRUCell (or gru_cuda's) into a
    reference module: the r, z, n row blocks of weight_ih / weight_hh, transposed."""
    cell = reference.cell if isinstance(reference, GRUReference) else reference
    if hasattr(gru, "weight_ih"):  # a GRUCell
        suffix = ""
    else:
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    w_ih = getattr(gru, "weight_ih" + suffix).chunk(3, 0)
    w_hh = getattr(gru, "weight_hh" + suffix).chunk(3, 0)
    has_bias = getattr(gru, "bias", True)
    b_ih = getattr(gru, "bias_ih" + suffix).chunk(3) if has_bias else [None] * 3
    b_hh = getattr(gru, "bias_hh" + suffix).chunk(3) if has_bias else [None] * 3
    for i, g in enumerate(_GATES):
        getattr(cell, f"W_x{g}").copy_(w_ih[i].t())
        getattr(cell, f"W_h{g}").copy_(w_hh[i].t())
        for name, b in ((f"b_x{g}", b_ih[i]), (f"b_h{g}", b_hh[i])):
            if b is None:
                getattr(cell, name).zero_()
            else:
                getattr(cell, name).copy_(b)
    return reference
