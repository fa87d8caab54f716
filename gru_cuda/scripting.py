"""What torch.jit.script compiles in place of a GRU or GRUCell (their
__prepare_scriptable__): the same parameters, shared, and the same forward (layers.py)
on the fused op. TorchScript cannot compile the eager modules' choice of route (forward-
mode AD and torch.func), which it has no use for."""
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from . import layers


def _share_parameters(twin, module, names):
    for name in names:
        twin.register_parameter(name, getattr(module, name))
    twin.train(module.training)


class ScriptableGRU(nn.Module):
    __constants__ = ["input_size", "hidden_size", "num_layers", "bias", "batch_first",
                     "dropout", "bidirectional"]

    def __init__(self, gru):
        super().__init__()
        for name in ("input_size", "hidden_size", "num_layers", "bias", "batch_first",
                     "dropout", "bidirectional"):
            setattr(self, name, getattr(gru, name))
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
        autocast = torch.is_autocast_enabled()
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            output, h_n = layers.gru_forward_packed(
                data, batch_sizes, sorted_indices, unsorted_indices, hx, self._flat_weights,
                self.input_size, self.hidden_size, self.num_layers, self.bias, self.dropout,
                self.bidirectional, self.training, torch.is_grad_enabled(), False, autocast)
            return PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices), h_n
        else:
            return layers.gru_forward(
                input, hx, self._flat_weights, self.input_size, self.hidden_size,
                self.num_layers, self.bias, self.batch_first, self.dropout, self.bidirectional,
                self.training, torch.is_grad_enabled(), False, autocast)


class ScriptableGRUCell(nn.Module):
    __constants__ = ["input_size", "hidden_size", "bias"]

    def __init__(self, cell):
        super().__init__()
        self.input_size, self.hidden_size, self.bias = cell.input_size, cell.hidden_size, cell.bias
        names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if cell.bias else [])
        _share_parameters(self, cell, names)
        self._weights: List[Tensor] = [getattr(cell, name) for name in names]

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:
        return layers.gru_cell_forward(input, hx, self._weights, self.input_size,
                                       self.hidden_size, self.bias, torch.is_grad_enabled(),
                                       False, torch.is_autocast_enabled())
