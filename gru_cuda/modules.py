"""GRU and GRUCell: drop-in replacements for torch.nn.GRU and torch.nn.GRUCell that run
each layer, both directions, as one fused gru_cuda op. Plain nn.Modules (not nn.RNNBase
subclasses) so that torch.compile traces them without a graph break."""
import math
import numbers
import warnings

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from . import reference
from .scripting import ScriptableGRU, ScriptableGRUCell

_gru_layer = torch.ops.gru_cuda.gru_layer


def _plain_autograd_layer(input, hx, weights, has_biases, bidirectional, batch_sizes, _=None):
    return (*reference.gru_layer(input, hx, weights, has_biases, bidirectional, batch_sizes),
            None)


def _layer_op(tensors):
    """The fused op, or, where autograd needs more than a backward (forward-mode AD, the
    torch.func transforms, which custom ops do not support), the same layer as plain
    autograd ops (gru_cuda.reference.gru_layer), at the reference loop's speed."""
    if torch.compiler.is_compiling():
        return _gru_layer
    if torch._C._functorch.maybe_current_level() is not None:
        return _plain_autograd_layer
    if fwAD._current_level >= 0 and any(fwAD.unpack_dual(t).tangent is not None
                                        for t in tensors):
        return _plain_autograd_layer
    return _gru_layer


def _need_backward(tensors):
    """Whether the op keeps its workspace for a backward (5x the output's memory traffic).
    Tracing and export freeze this value into their graph, which may later be trained:
    there it is always kept."""
    if torch.jit.is_tracing() or getattr(torch.compiler, "is_exporting", lambda: False)():
        return True
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _check_same_placement(what, tensor, weight):
    if tensor.device != weight.device:
        raise RuntimeError(
            f"{what} is on {tensor.device} but the GRU's parameters are on {weight.device}; "
            f"move one of them: {what}.to({str(weight.device)!r}) or model.to({str(tensor.device)!r})")


class GRU(nn.Module):
    """Multi-layer GRU with torch.nn.GRU's arguments, parameters, inputs and outputs."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__()
        if (not isinstance(dropout, numbers.Number) or isinstance(dropout, bool)
                or not 0 <= dropout <= 1):
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}", stacklevel=2)
        for name, value in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(value, bool):
                raise TypeError(f"{name} should be of type bool, got: {type(value).__name__}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__}")
            if value <= 0:
                raise ValueError(f"{name} must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")

        self.mode = "GRU"
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = 0
        num_directions = 2 if bidirectional else 1
        kw = {"device": device, "dtype": dtype}

        # Same names, shapes and creation order as nn.GRU, so the same seed gives the
        # same initial weights and a state_dict moves between the two.
        self._flat_weights_names = []
        self._all_weights = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * num_directions
            for direction in range(num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (3 * hidden_size, layer_input)),
                          ("weight_hh", (3 * hidden_size, hidden_size))]
                if bias:
                    shapes += [("bias_ih", (3 * hidden_size,)), ("bias_hh", (3 * hidden_size,))]
                names = []
                for base, shape in shapes:
                    self.register_parameter(base + suffix, nn.Parameter(torch.empty(shape, **kw)))
                    names.append(base + suffix)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def flatten_parameters(self):
        """nn.GRU compacts its weights for cuDNN; the fused op needs no such step."""

    def __prepare_scriptable__(self):
        """torch.jit.script compiles this twin, which shares the parameters."""
        return ScriptableGRU(self)

    @property
    def _flat_weights(self):
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self):
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def _layer_weights(self, layer):
        """The layer's weights in the op's order: per direction w_ih, w_hh[, b_ih, b_hh]."""
        per_layer = len(self._flat_weights_names) // self.num_layers
        names = self._flat_weights_names[layer * per_layer:(layer + 1) * per_layer]
        return [getattr(self, name) for name in names]

    def _check_input(self, input, packed):
        weight = self.weight_ih_l0
        if input.dtype != weight.dtype and not torch._C._is_any_autocast_enabled():
            raise ValueError(
                f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight.dtype}). "
                f"Convert input: input.to({weight.dtype}), or convert model: model.to({input.dtype})")
        _check_same_placement("input", input, weight)
        expected_dim = 2 if packed else 3
        if input.dim() != expected_dim:
            raise RuntimeError(f"input must have {expected_dim} dimensions, got {input.dim()}")
        if input.size(-1) != self.input_size:
            raise RuntimeError("input.size(-1) must be equal to input_size. "
                               f"Expected {self.input_size}, got {input.size(-1)}")

    def _check_hidden(self, hx, input, batch):
        expected = (self.num_layers * (2 if self.bidirectional else 1), batch, self.hidden_size)
        if hx.size() != expected:
            raise RuntimeError(f"Expected hidden size {expected}, got {list(hx.size())}")
        if hx.dtype != input.dtype and not torch._C._is_any_autocast_enabled():
            raise ValueError(f"hx dtype ({hx.dtype}) does not match input dtype ({input.dtype})")
        _check_same_placement("hx", hx, self.weight_ih_l0)

    def forward(self, input, hx=None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if input.dim() not in (2, 3):
            raise ValueError(f"GRU: Expected input to be 2D or 3D, got {input.dim()}D instead")
        batched = input.dim() == 3
        if batched:
            if hx is not None and hx.dim() != 3:
                raise RuntimeError(
                    f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
        else:
            if hx is not None and hx.dim() != 2:
                raise RuntimeError(
                    f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
            input = input.unsqueeze(0 if self.batch_first else 1)
            if hx is not None:
                hx = hx.unsqueeze(1)
        if self.batch_first:
            input = input.transpose(0, 1)
        self._check_input(input, packed=False)
        if input.size(0) == 0:
            raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
        output, h_n = self._run_layers(input, hx, None)
        if self.batch_first:
            output = output.transpose(0, 1)
        if not batched:
            output = output.squeeze(0 if self.batch_first else 1)
            h_n = h_n.squeeze(1)
        return output, h_n

    def _forward_packed(self, packed, hx):
        data, batch_sizes, sorted_indices, unsorted_indices = packed
        self._check_input(data, packed=True)
        if hx is not None:
            if hx.dim() != 3:
                raise RuntimeError(
                    f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
            self._check_hidden(hx, data, int(batch_sizes[0]))  # before permuting it
            if sorted_indices is not None:
                hx = hx.index_select(1, sorted_indices)
        # The op runs the packed rows as they are (length-sorted, time-major).
        output, h_n = self._run_layers(data, hx, batch_sizes)
        if unsorted_indices is not None:
            h_n = h_n.index_select(1, unsorted_indices)
        return PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices), h_n

    def _run_layers(self, x, hx, batch_sizes):
        """x: (T, N, I) time-major, or a PackedSequence's data with its batch_sizes.
        Returns (output, h_n (L*D, N, H)); output is laid out like x, with D*H features."""
        num_directions = 2 if self.bidirectional else 1
        batch = x.size(1) if batch_sizes is None else int(batch_sizes[0])
        if hx is None:
            hx = x.new_zeros(self.num_layers * num_directions, batch, self.hidden_size)
        else:
            self._check_hidden(hx, x, batch)
        tensors = [x, hx, *self._flat_weights]
        need_backward, layer_op = _need_backward(tensors), _layer_op(tensors)
        finals = []
        for layer in range(self.num_layers):
            x, h_last, _ = layer_op(
                x, hx[layer * num_directions:(layer + 1) * num_directions],
                self._layer_weights(layer), self.bias, self.bidirectional, batch_sizes,
                need_backward)
            finals.append(h_last)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = F.dropout(x, self.dropout, True)
        return x, finals[0] if len(finals) == 1 else torch.cat(finals)


class GRUCell(nn.Module):
    """One GRU step with torch.nn.GRUCell's arguments, parameters, inputs and outputs."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        kw = {"device": device, "dtype": dtype}
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size, **kw))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size, **kw))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size, **kw))
            self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self):
        bound = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        return s

    def __prepare_scriptable__(self):
        """torch.jit.script compiles this twin, which shares the parameters."""
        return ScriptableGRUCell(self)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        if input.dim() not in (1, 2):
            raise ValueError(f"GRUCell: Expected input to be 1D or 2D, got {input.dim()}D instead")
        if hx is not None and hx.dim() not in (1, 2):
            raise ValueError(f"GRUCell: Expected hidden to be 1D or 2D, got {hx.dim()}D instead")
        batched = input.dim() == 2
        if not batched:
            input = input.unsqueeze(0)
        if hx is None:
            hx = input.new_zeros(input.size(0), self.hidden_size)
        elif not batched:
            hx = hx.unsqueeze(0)
        if input.size(1) != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {input.size(1)} expected {self.input_size}")
        if hx.size(0) != input.size(0):
            raise RuntimeError(
                f"Input batch size {input.size(0)} doesn't match hidden0 batch size {hx.size(0)}")
        if hx.size(1) != self.hidden_size:
            raise RuntimeError(
                f"hidden0 has inconsistent hidden_size: got {hx.size(1)}, expected {self.hidden_size}")
        if not torch._C._is_any_autocast_enabled():
            for what, t in (("input", input), ("hx", hx)):
                if t.dtype != self.weight_ih.dtype:
                    raise ValueError(f"GRUCell {what} dtype ({t.dtype}) does not match weight "
                                     f"dtype ({self.weight_ih.dtype})")
        _check_same_placement("input", input, self.weight_ih)
        _check_same_placement("hx", hx, self.weight_ih)
        weights = [self.weight_ih, self.weight_hh] + (
            [self.bias_ih, self.bias_hh] if self.bias else [])
        tensors = [input, hx, *weights]
        out, _, _ = _layer_op(tensors)(input.unsqueeze(0), hx.unsqueeze(0), weights, self.bias,
                                       False, None, _need_backward(tensors))
        h = out[0]
        return h if batched else h.squeeze(0)
