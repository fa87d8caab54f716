"""The forward of GRU and GRUCell, once, for the eager modules (modules.py) and their
TorchScript twins (scripting.py): the argument checks nn.GRU makes, with its messages;
the shapes (batch_first, unbatched, packed); the layer loop and dropout between layers.
TorchScript-compatible. The caller says which route runs each layer (`plain`: the plain
autograd ops of plain_layer, else the fused op), whether the op keeps its workspace for
a backward, and whether autocast is on for the input's device."""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import plain_layer


def check_placement(what: str, tensor: Tensor, weight: Tensor) -> None:
    if tensor.device != weight.device:
        raise RuntimeError(
            "{} is on {} but the GRU's parameters are on {}; move one of them: {}.to('{}') or "
            "model.to('{}')".format(what, str(tensor.device), str(weight.device), what,
                                    str(weight.device), str(tensor.device)))


def check_input(input: Tensor, weight: Tensor, input_size: int, packed: bool,
                autocast: bool) -> None:
    if input.dtype != weight.dtype and not autocast:
        raise ValueError(
            "RNN input dtype ({}) does not match weight dtype ({}). Convert input: "
            "input.to({}), or convert model: model.to({})".format(
                input.dtype, weight.dtype, weight.dtype, input.dtype))
    check_placement("input", input, weight)
    expected_dim = 2 if packed else 3
    if input.dim() != expected_dim:
        raise RuntimeError("input must have {} dimensions, got {}".format(expected_dim,
                                                                           input.dim()))
    if input.size(-1) != input_size:
        raise RuntimeError("input.size(-1) must be equal to input_size. Expected {}, got {}"
                           .format(input_size, input.size(-1)))


def check_hidden(hx: Tensor, input: Tensor, weight: Tensor, states: int, batch: int,
                 hidden_size: int, autocast: bool) -> None:
    """hx must be (states, batch, hidden_size): states = num_layers * directions."""
    if hx.dim() != 3 or hx.size(0) != states or hx.size(1) != batch or \
            hx.size(2) != hidden_size:
        raise RuntimeError("Expected hidden size ({}, {}, {}), got {}".format(
            states, batch, hidden_size, list(hx.size())))
    if hx.dtype != input.dtype and not autocast:
        raise ValueError("hx dtype ({}) does not match input dtype ({})".format(hx.dtype,
                                                                              input.dtype))
    check_placement("hx", hx, weight)


def run_layers(x: Tensor, hx: Tensor, batch_sizes: Optional[Tensor], weights: List[Tensor],
               num_layers: int, bias: bool, bidirectional: bool, dropout: float,
               training: bool, need_backward: bool, plain: bool) -> Tuple[Tensor, Tensor]:
    """x: (T, N, I) time-major, or a PackedSequence's data with its batch_sizes; hx: checked.
    Returns (output, h_n (num_layers * D, N, H)); output is laid out like x."""
    D = 2 if bidirectional else 1
    per_layer = len(weights) // num_layers
    finals: List[Tensor] = []
    for layer in range(num_layers):
        layer_hx = hx[layer * D:(layer + 1) * D]
        layer_weights = weights[layer * per_layer:(layer + 1) * per_layer]
        if plain:
            x, h_last = plain_layer.gru_layer(x, layer_hx, layer_weights, bias, bidirectional,
                                              batch_sizes)
        else:
            x, h_last, _ = torch.ops.gru_cuda.gru_layer(x, layer_hx, layer_weights, bias,
                                                        bidirectional, batch_sizes,
                                                        need_backward)
        finals.append(h_last)
        if dropout > 0 and training and layer < num_layers - 1:
            x = F.dropout(x, dropout, True)
    return x, finals[0] if num_layers == 1 else torch.cat(finals)


def gru_forward(input: Tensor, hx: Optional[Tensor], weights: List[Tensor], input_size: int,
                hidden_size: int, num_layers: int, bias: bool, batch_first: bool,
                dropout: float, bidirectional: bool, training: bool, need_backward: bool,
                plain: bool, autocast: bool) -> Tuple[Tensor, Tensor]:
    """nn.GRU's forward on a tensor: (L, N, I), (N, L, I) with batch_first, or (L, I)."""
    if input.dim() != 2 and input.dim() != 3:
        raise ValueError("GRU: Expected input to be 2D or 3D, got {}D instead".format(
            input.dim()))
    batched = input.dim() == 3
    batch_dim = 0 if batch_first else 1
    if batched:
        if hx is not None and hx.dim() != 3:
            raise RuntimeError("For batched 3-D input, hx should also be 3-D but got {}-D "
                               "tensor".format(hx.dim()))
    else:
        if hx is not None and hx.dim() != 2:
            raise RuntimeError("For unbatched 2-D input, hx should also be 2-D but got {}-D "
                               "tensor".format(hx.dim()))
        input = input.unsqueeze(batch_dim)
        if hx is not None:
            hx = hx.unsqueeze(1)
    if batch_first:
        input = input.transpose(0, 1)
    weight = weights[0]
    check_input(input, weight, input_size, False, autocast)
    if input.size(0) == 0:
        raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
    states = num_layers * (2 if bidirectional else 1)
    if hx is None:
        hx = input.new_zeros(states, input.size(1), hidden_size)
    else:
        check_hidden(hx, input, weight, states, input.size(1), hidden_size, autocast)
    output, h_n = run_layers(input, hx, None, weights, num_layers, bias, bidirectional,
                             dropout, training, need_backward, plain)
    if batch_first:
        output = output.transpose(0, 1)
    if not batched:
        output = output.squeeze(batch_dim)
        h_n = h_n.squeeze(1)
    return output, h_n


@torch.jit.unused
def _zero_state(data: Tensor, states: int, batch_sizes: Tensor, hidden_size: int) -> Tensor:
    # A tensor as the batch size, as nn.GRU does: a trace then follows the batch size of
    # the input it is given instead of freezing the one it was traced with.
    return torch.zeros(states, batch_sizes[0], hidden_size, dtype=data.dtype,
                       device=data.device)


def gru_forward_packed(data: Tensor, batch_sizes: Tensor, sorted_indices: Optional[Tensor],
                       unsorted_indices: Optional[Tensor], hx: Optional[Tensor],
                       weights: List[Tensor], input_size: int, hidden_size: int,
                       num_layers: int, bias: bool, dropout: float, bidirectional: bool,
                       training: bool, need_backward: bool, plain: bool,
                       autocast: bool) -> Tuple[Tensor, Tensor]:
    """nn.GRU's forward on a PackedSequence's fields: (output data, h_n). The op runs the
    packed rows as they are (length-sorted, time-major)."""
    weight = weights[0]
    check_input(data, weight, input_size, True, autocast)
    states = num_layers * (2 if bidirectional else 1)
    if hx is None:
        if torch.jit.is_scripting():
            hx = torch.zeros(states, int(batch_sizes[0]), hidden_size, dtype=data.dtype,
                             device=data.device)
        else:
            hx = _zero_state(data, states, batch_sizes, hidden_size)
    else:
        if hx.dim() != 3:
            raise RuntimeError("For batched 3-D input, hx should also be 3-D but got {}-D "
                               "tensor".format(hx.dim()))
        check_hidden(hx, data, weight, states, int(batch_sizes[0]), hidden_size, autocast)
        if sorted_indices is not None:  # checked before permuting, to name its shape
            hx = hx.index_select(1, sorted_indices)
    output, h_n = run_layers(data, hx, batch_sizes, weights, num_layers, bias, bidirectional,
                             dropout, training, need_backward, plain)
    if unsorted_indices is not None:
        h_n = h_n.index_select(1, unsorted_indices)
    return output, h_n


def gru_cell_forward(input: Tensor, hx: Optional[Tensor], weights: List[Tensor],
                     input_size: int, hidden_size: int, bias: bool, need_backward: bool,
                     plain: bool, autocast: bool) -> Tensor:
    """nn.GRUCell's forward: input (N, I) or (I), hx (N, H) or (H) or None. Lean, as a
    decoding loop calls it once per token: sizes read once, one op call."""
    input_dim = input.dim()
    if input_dim != 1 and input_dim != 2:
        raise ValueError("GRUCell: Expected input to be 1D or 2D, got {}D instead".format(
            input_dim))
    if hx is not None and hx.dim() != 1 and hx.dim() != 2:
        raise ValueError("GRUCell: Expected hidden to be 1D or 2D, got {}D instead".format(
            hx.dim()))
    batched = input_dim == 2
    if not batched:
        input = input.unsqueeze(0)
    if hx is None:
        hx = input.new_zeros(input.size(0), hidden_size)
    elif not batched:
        hx = hx.unsqueeze(0)
    batch, features = input.shape
    hx_batch, hx_features = hx.shape
    if features != input_size:
        raise RuntimeError("input has inconsistent input_size: got {} expected {}".format(
            features, input_size))
    if hx_batch != batch:
        raise RuntimeError("Input batch size {} doesn't match hidden0 batch size {}".format(
            batch, hx_batch))
    if hx_features != hidden_size:
        raise RuntimeError("hidden0 has inconsistent hidden_size: got {}, expected {}".format(
            hx_features, hidden_size))
    weight = weights[0]
    if not autocast:
        if input.dtype != weight.dtype:
            raise ValueError("GRUCell input dtype ({}) does not match weight dtype ({})"
                             .format(input.dtype, weight.dtype))
        if hx.dtype != weight.dtype:
            raise ValueError("GRUCell hx dtype ({}) does not match weight dtype ({})"
                             .format(hx.dtype, weight.dtype))
    check_placement("input", input, weight)
    check_placement("hx", hx, weight)
    if plain:
        h = plain_layer.gru_layer(input[None], hx[None], weights, bias, False, None)[0][0]
    else:
        h = torch.ops.gru_cuda.gru_cell(input, hx, weights, bias, need_backward)
    return h if batched else h[0]
