"""What torch.jit.script compiles in place of a GRU or GRUCell (their
__prepare_scriptable__): the same parameters, shared, and a forward written in
TorchScript's subset of Python around the same op. TorchScript cannot compile the eager
modules' dispatch (forward-mode AD and torch.func routes), which it has no use for."""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence


def _share_parameters(twin, module, names):
    for name in names:
        twin.register_parameter(name, getattr(module, name))
    twin.train(module.training)


class ScriptableGRU(nn.Module):
    __constants__ = ["input_size", "hidden_size", "num_layers", "bias", "batch_first",
                     "dropout", "bidirectional", "num_directions"]

    def __init__(self, gru):
        super().__init__()
        for name in ("input_size", "hidden_size", "num_layers", "bias", "batch_first",
                     "dropout", "bidirectional"):
            setattr(self, name, getattr(gru, name))
        self.num_directions = 2 if gru.bidirectional else 1
        _share_parameters(self, gru, gru._flat_weights_names)
        self._flat_weights: List[Tensor] = gru._flat_weights

    @torch.jit._overload_method
    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        pass

    @torch.jit._overload_method
    def forward(self, input: PackedSequence,  # noqa: F811
                hx: Optional[Tensor] = None) -> Tuple[PackedSequence, Tensor]:
        pass

    def forward(self, input, hx: Optional[Tensor] = None):  # noqa: F811
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            if hx is not None and sorted_indices is not None:
                hx = hx.index_select(1, sorted_indices)
            out, h_n = self._layers(data, hx, int(batch_sizes[0]), batch_sizes)
            if unsorted_indices is not None:
                h_n = h_n.index_select(1, unsorted_indices)
            return PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices), h_n
        else:
            batched = input.dim() == 3
            batch_dim = 0 if self.batch_first else 1
            if not batched:
                input = input.unsqueeze(batch_dim)
                if hx is not None:
                    hx = hx.unsqueeze(1)
            if self.batch_first:
                input = input.transpose(0, 1)
            if input.size(0) == 0:
                raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
            out, h_n = self._layers(input, hx, input.size(1), None)
            if self.batch_first:
                out = out.transpose(0, 1)
            if not batched:
                out, h_n = out.squeeze(batch_dim), h_n.squeeze(1)
            return out, h_n

    def _layers(self, x: Tensor, hx: Optional[Tensor], batch: int,
                batch_sizes: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        if x.size(-1) != self.input_size:
            raise RuntimeError("input.size(-1) must be equal to input_size")
        D = self.num_directions
        if hx is None:
            hx = torch.zeros(self.num_layers * D, batch, self.hidden_size, dtype=x.dtype,
                             device=x.device)
        per_layer = len(self._flat_weights) // self.num_layers
        finals: List[Tensor] = []
        for layer in range(self.num_layers):
            x, h_last, _ = torch.ops.gru_cuda.gru_layer(
                x, hx[layer * D:(layer + 1) * D],
                self._flat_weights[layer * per_layer:(layer + 1) * per_layer], self.bias,
                self.bidirectional, batch_sizes, torch.is_grad_enabled())
            finals.append(h_last)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, torch.cat(finals)


class ScriptableGRUCell(nn.Module):
    __constants__ = ["input_size", "hidden_size", "bias"]

    def __init__(self, cell):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = cell.input_size, cell.hidden_size, cell.bias
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if cell.bias else [])
        _share_parameters(self, cell, names)
        self._weights: List[Tensor] = [getattr(cell, name) for name in names]

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
        if hx is None:
            hx = torch.zeros(input.size(0), self.hidden_size, dtype=input.dtype,
                             device=input.device)
        elif not batched:
            hx = hx.unsqueeze(0)
        out, _, _ = torch.ops.gru_cuda.gru_layer(input.unsqueeze(0), hx.unsqueeze(0),
                                                 self._weights, self.bias, False, None,
                                                 torch.is_grad_enabled())
        return out[0] if batched else out[0].squeeze(0)
