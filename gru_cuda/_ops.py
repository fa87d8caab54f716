"""Autograd and vmap registrations of the gru_cuda ops defined in csrc/ops.cpp (their
meta kernels, which FakeTensor and torch.compile run, are C++: csrc/meta/)."""
import torch

from . import _C, plain_layer

# The workspace saved per row and direction: SAVED_BLOCKS blocks of H (csrc/gru_cell.h).
SAVED_BLOCKS = _C.SAVED_BLOCKS
SAVED_BLOCK_NAMES = tuple(_C.SAVED_BLOCK_NAMES.split(","))
assert len(SAVED_BLOCK_NAMES) == SAVED_BLOCKS


def _setup_context(ctx, inputs, output):
    input, hx, weights, has_biases, bidirectional, batch_sizes = inputs[:6]
    ctx.need_backward = inputs[6] if len(inputs) > 6 else True
    ctx.save_for_backward(input, hx, output[2], batch_sizes, *weights)
    ctx.has_biases, ctx.bidirectional = has_biases, bidirectional
    ctx.mark_non_differentiable(output[2])
    # Unused outputs' gradients stay None instead of zero tensors (saved alone is 5x the
    # output): the backward treats None as zero.
    ctx.set_materialize_grads(False)


def _backward(ctx, grad_output, grad_hn, _grad_saved):
    input, hx, saved, batch_sizes, *weights = ctx.saved_tensors
    if grad_output is None:
        grad_output = input.new_zeros(*input.shape[:-1], hx.shape[0] * hx.shape[2])
    if grad_hn is None:
        grad_hn = torch.zeros_like(hx)
    needs_input, needs_hx, needs_weights = ctx.needs_input_grad[:3]
    if torch.is_grad_enabled() or _legacy_batched(grad_output, grad_hn):
        # create_graph: the gradient must be differentiable itself. The fused backward is
        # not, so the layer is run again as plain autograd ops and differentiated. The
        # same route serves a batch of cotangents under autograd's own vmap
        # (is_grads_batched=True, batched gradient checks), which runs custom ops only
        # through batching rules it has built in.
        grads = _differentiable_grads(ctx, [input, hx, *weights],
                                      [needs_input, needs_hx, *needs_weights], batch_sizes,
                                      grad_output, grad_hn)
        d_input, d_hx, d_weights = grads[0], grads[1], grads[2:]
    else:
        if not ctx.need_backward:
            raise RuntimeError("gru_cuda: this forward ran with need_backward=False and kept "
                               "nothing for a backward; run it with need_backward=True")
        d_input, d_hx, d_weights = torch.ops.gru_cuda.gru_layer_backward(
            grad_output, grad_hn, input, weights, ctx.has_biases, ctx.bidirectional, saved,
            batch_sizes, [needs_input, needs_hx, any(needs_weights)])
    return (d_input, d_hx, d_weights if any(needs_weights) else [None] * len(weights),
            None, None, None, None)


def _legacy_batched(*tensors):
    return any(torch._C._functorch.is_legacy_batchedtensor(t) for t in tensors)


def _differentiable_grads(ctx, tensors, needed, batch_sizes, grad_output, grad_hn):
    """Gradients of the tensors that need one (None for the rest), differentiable."""
    input, hx, *weights = tensors
    with torch.enable_grad():
        output, h_n = plain_layer.gru_layer(input, hx, weights, ctx.has_biases,
                                            ctx.bidirectional, batch_sizes)
    grads = iter(torch.autograd.grad(
        (output, h_n), [t for t, n in zip(tensors, needed) if n], (grad_output, grad_hn),
        create_graph=True, allow_unused=True))
    return [next(grads) if n else None for n in needed]


torch.library.register_autograd("gru_cuda::gru_layer", _backward, setup_context=_setup_context)


def _backward_vmap(info, in_dims, *args):
    """The fused backward under torch.func's vmap (e.g. vmap over torch.autograd.grad):
    one backward per batch entry, each with its own weight gradients, stacked along
    dim 0. (Autograd's own vmap takes the differentiable route above instead.)"""
    def entry(b):
        picked = []
        for arg, dim in zip(args, in_dims):
            if isinstance(arg, (list, tuple)):
                dims = dim if dim is not None else [None] * len(arg)
                picked.append([a if d is None else a.select(d, b) for a, d in zip(arg, dims)])
            else:
                picked.append(arg if dim is None else arg.select(dim, b))
        return torch.ops.gru_cuda.gru_layer_backward(*picked)

    def stack(tensors):
        return None if tensors[0] is None else torch.stack(tensors)

    d_input, d_hx, d_weights = zip(*[entry(b) for b in range(info.batch_size)])
    weights = [torch.stack(ws) for ws in zip(*d_weights)]
    output = (stack(d_input), stack(d_hx), weights)
    return output, (None if output[0] is None else 0, None if output[1] is None else 0,
                    [0] * len(weights))


torch.library.register_vmap("gru_cuda::gru_layer_backward", _backward_vmap)
