"""The op gru_cuda::gru_layer in plain autograd ops: one layer, one or both directions,
padded or packed, in nn.GRU's own names and layout (gate blocks r, z, n; the reset gate
scales W_hn h + b_hn). Differentiable to any order and under every torch.func transform,
at the speed of a Python loop over steps: the route for what the fused op cannot do
(double backward, forward-mode AD, torch.func). TorchScript-compatible."""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def weights_per_direction(has_biases: bool) -> int:
    """w_ih, w_hh[, b_ih, b_hh]: the op's weights per direction, in nn.GRU's order."""
    return 4 if has_biases else 2


def gru_cell(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Optional[Tensor],
             b_hh: Optional[Tensor]) -> Tensor:
    """One step: the new state of the rows of x (N, I) and h (N, H)."""
    gx_r, gx_z, gx_n = F.linear(x, w_ih, b_ih).chunk(3, 1)
    gh_r, gh_z, gh_n = F.linear(h, w_hh, b_hh).chunk(3, 1)  # gh_n = W_hn h + b_hn
    r = torch.sigmoid(gx_r + gh_r)
    z = torch.sigmoid(gx_z + gh_z)
    n = torch.tanh(gx_n + r * gh_n)
    return n + z * (h - n)  # (1 - z) * n + z * h


def gru_layer(input: Tensor, hx: Tensor, weights: List[Tensor], has_biases: bool,
              bidirectional: bool, batch_sizes: Optional[Tensor] = None
              ) -> Tuple[Tensor, Tensor]:
    """(output, h_n) as the op computes them: input (T, N, I), or a PackedSequence's data
    with its batch_sizes; hx (D, N, H). A packed row joins the reverse direction with its
    own h0 at its last step."""
    per_direction = weights_per_direction(has_biases)
    D = 2 if bidirectional else 1
    if input.size(0) == 0:  # no steps: nothing changes
        return input.new_zeros(list(input.shape[:-1]) + [D * hx.size(2)]), hx
    if batch_sizes is None:
        steps = input.unbind(0)
        sizes = [input.size(1)] * input.size(0)
    else:
        packed_sizes: List[int] = batch_sizes.tolist()  # TorchScript needs the type here
        sizes = packed_sizes
        steps = input.split(sizes)
    T = len(steps)
    outputs: List[Tensor] = []
    finals: List[Tensor] = []
    for d in range(D):
        w = weights[d * per_direction:(d + 1) * per_direction]
        b_ih: Optional[Tensor] = w[2] if has_biases else None
        b_hh: Optional[Tensor] = w[3] if has_biases else None
        h = hx[d]
        out: List[Tensor] = []
        for i in range(T):
            t = T - 1 - i if d == 1 else i
            live = gru_cell(steps[t], h[:sizes[t]], w[0], w[1], b_ih, b_hh)
            h = live if sizes[t] == h.size(0) else torch.cat([live, h[sizes[t]:]])
            out.append(live)
        if d == 1:
            out.reverse()
        outputs.append(torch.stack(out) if batch_sizes is None else torch.cat(out))
        finals.append(h)
    return torch.cat(outputs, -1), torch.stack(finals)
