"""The textbook GRU in plain PyTorch, no fusion: separate input and hidden matrices
per gate, used to check the fused kernels and as the 'reference loop' contender.

    r  = sigmoid(x W_xr + b_xr + h W_hr + b_hr)
    z  = sigmoid(x W_xz + b_xz + h W_hz + b_hz)
    h~ = tanh(x W_xh + b_xh + r * (h W_hh + b_hh))
    h' = z * h + (1 - z) * h~
"""
import math

import torch
from torch import nn

_GATES = ("r", "z", "h")  # nn.GRU's row blocks r, z, n; n is the candidate h~ here


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
        h_tilde = torch.tanh(x @ self.W_xh + self.b_xh + r * (h @ self.W_hh + self.b_hh))
        return z * h + (1 - z) * h_tilde


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


def gru_cell(x, h, w_ih, w_hh, b_ih=None, b_hh=None):
    """One textbook step on nn.GRU-layout weights (row blocks r, z, n): plain autograd
    ops, so it is differentiable to any order and under every torch.func transform."""
    W_xr, W_xz, W_xh = w_ih.chunk(3)
    W_hr, W_hz, W_hh = w_hh.chunk(3)
    zeros = x.new_zeros(w_hh.shape[1])
    b_xr, b_xz, b_xh = b_ih.chunk(3) if b_ih is not None else (zeros,) * 3
    b_hr, b_hz, b_hh = b_hh.chunk(3) if b_hh is not None else (zeros,) * 3
    r = torch.sigmoid(x @ W_xr.t() + b_xr + h @ W_hr.t() + b_hr)
    z = torch.sigmoid(x @ W_xz.t() + b_xz + h @ W_hz.t() + b_hz)
    h_tilde = torch.tanh(x @ W_xh.t() + b_xh + r * (h @ W_hh.t() + b_hh))
    return z * h + (1 - z) * h_tilde


def gru_layer(input, hx, weights, has_biases, bidirectional, batch_sizes=None):
    """What the op gru_cuda::gru_layer computes, (output, h_n), as a loop of gru_cell:
    input (T, N, I), or a PackedSequence's data with its batch_sizes; hx (D, N, H);
    weights w_ih, w_hh[, b_ih, b_hh] per direction. A packed row joins the reverse
    direction with its own h0 at its last step."""
    per_direction = 4 if has_biases else 2
    D = 2 if bidirectional else 1
    if input.shape[0] == 0:  # no steps: nothing changes
        return input.new_zeros(*input.shape[:-1], D * hx.shape[-1]), hx
    if batch_sizes is None:
        steps = list(input.unbind(0))
        sizes = [input.shape[1]] * len(steps)
    else:
        sizes = batch_sizes.tolist()
        steps = list(input.split(sizes))
    outputs, finals = [], []
    for d in range(D):
        weights_d = weights[d * per_direction:(d + 1) * per_direction]
        h, out = hx[d], [None] * len(steps)
        for t in (reversed(range(len(steps))) if d else range(len(steps))):
            live = gru_cell(steps[t], h[:sizes[t]], *weights_d)
            h = live if sizes[t] == h.shape[0] else torch.cat([live, h[sizes[t]:]])
            out[t] = live
        outputs.append(torch.stack(out) if batch_sizes is None else torch.cat(out))
        finals.append(h)
    return torch.cat(outputs, -1), torch.stack(finals)
