"""GRU and GRUCell: drop-in replacements for torch.nn.GRU and torch.nn.GRUCell that run
each layer, both directions, as one fused gru_cuda op. Plain nn.Modules (not nn.RNNBase
subclasses) so that torch.compile traces them without a graph break. Their forward is
layers.py's, shared with the TorchScript twins; here only the route is chosen."""
import math
import numbers
import warnings

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from . import layers
from .scripting import ScriptableGRU, ScriptableGRUCell


_is_exporting = getattr(torch.compiler, "is_exporting", lambda: False)
_below_autograd = torch._C._AutoDispatchBelowAutograd


def _route(tensors):
    """(need_backward, plain, autocast) for a call on these tensors (input first; None
    for an absent hx). Cheap, since a decoding loop pays it every step.

    need_backward: whether the op keeps its workspace for a backward (5x the output's
    memory traffic). Tracing and export freeze this value into their graph, which may
    later be trained: there it is always kept.
    plain: where autograd needs more than a backward (forward-mode AD, the torch.func
    transforms, which custom ops do not support), each layer runs as plain autograd ops
    (gru_cuda.plain_layer), at a Python loop's speed.
    autocast: whether autocast is on for the input's device (dtype checks then step
    aside, as nn.GRU's do)."""
    if torch.jit.is_tracing() or _is_exporting():
        need_backward = True
    else:
        need_backward = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in tensors)
    plain = not torch.compiler.is_compiling() and (
        torch._C._functorch.maybe_current_level() is not None
        or (fwAD._current_level >= 0
            and any(t is not None and fwAD.unpack_dual(t).tangent is not None
                    for t in tensors)))
    autocast = torch._C._is_any_autocast_enabled() and torch.is_autocast_enabled(
        tensors[0].device.type)
    return need_backward, plain, autocast


def _run(forward, args, tensors):
    """forward(*args, need_backward, plain, autocast) on the route these tensors take.
    Where no graph is wanted, below autograd: a custom op's autograd layer is a Python
    function, a cost a one-step call feels."""
    route = _route(tensors)
    if route[0] or route[1] or torch.compiler.is_compiling():
        return forward(*args, *route)
    with _below_autograd():
        return forward(*args, *route)


_PROJ_SIZE = "proj_size argument is only supported for LSTM, not RNN or GRU"


class GRU(nn.Module):
    """Multi-layer GRU with torch.nn.GRU's arguments, parameters, inputs and outputs."""

    def __init__(self, *args, **kwargs):
        if "proj_size" in kwargs:  # nn.GRU refuses it by name, even proj_size=0
            raise ValueError(_PROJ_SIZE)
        super().__init__()
        self._setup(*args, **kwargs)

    def _setup(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
               dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        """nn.GRU's arguments, in its order (proj_size is RNNBase's, for LSTM only)."""
        if proj_size != 0:
            raise ValueError(_PROJ_SIZE)
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
        parameters = self._parameters  # faster than getattr, which a decoding loop feels
        try:
            return [parameters[name] for name in self._flat_weights_names]
        except KeyError:  # computed weights (weight_norm, spectral_norm, pruning) are not there
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

    def forward(self, input, hx=None):
        weights = self._flat_weights
        if isinstance(input, PackedSequence):
            data, batch_sizes, sorted_indices, unsorted_indices = input
            output, h_n = _run(layers.gru_forward_packed, (
                data, batch_sizes, sorted_indices, unsorted_indices, hx, weights,
                self.input_size, self.hidden_size, self.num_layers, self.bias, self.dropout,
                self.bidirectional, self.training), [data, hx, *weights])
            return PackedSequence(output, batch_sizes, sorted_indices, unsorted_indices), h_n
        return _run(layers.gru_forward, (
            input, hx, weights, self.input_size, self.hidden_size, self.num_layers, self.bias,
            self.batch_first, self.dropout, self.bidirectional, self.training),
            [input, hx, *weights])


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
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if self.bias else \
            ("weight_ih", "weight_hh")
        parameters = self._parameters
        try:
            weights = [parameters[name] for name in names]
        except KeyError:  # computed weights (weight_norm, spectral_norm, pruning)
            weights = [getattr(self, name) for name in names]
        return _run(layers.gru_cell_forward,
                    (input, hx, weights, self.input_size, self.hidden_size, self.bias),
                    [input, hx, *weights])
