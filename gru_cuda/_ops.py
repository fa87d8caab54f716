"""Autograd and fake (meta) registrations of the gru_cuda ops defined in csrc/ops.cpp."""
import torch

_SAVED_BLOCKS = 5  # r, z, n, gh_n, h_prev; see csrc/gru_cell.h


@torch.library.register_fake("gru_cuda::gru_forward")
def _gru_forward_fake(input, hx, w_ih, w_hh, b_ih, b_hh, reverse, lengths, need_backward=True):
    T, N, _ = input.shape
    H = w_hh.shape[1]
    saved_shape = (T, N, _SAVED_BLOCKS * H) if need_backward else (0,)
    return input.new_empty(T, N, H), input.new_empty(N, H), input.new_empty(saved_shape)


@torch.library.register_fake("gru_cuda::gru_backward")
def _gru_backward_fake(grad_output, grad_hn, input, w_ih, w_hh, saved, reverse, lengths):
    # grad_input takes input's layout; the rest are contiguous.
    return (torch.empty_like(input), input.new_empty(grad_hn.shape),
            input.new_empty(w_ih.shape), input.new_empty(w_hh.shape),
            input.new_empty(w_ih.shape[0]), input.new_empty(w_hh.shape[0]))


def _setup_context(ctx, inputs, output):
    input, _hx, w_ih, w_hh, b_ih, b_hh, reverse, lengths = inputs[:8]
    ctx.need_backward = inputs[8] if len(inputs) > 8 else True
    saved = output[2]
    ctx.save_for_backward(input, w_ih, w_hh, saved, lengths)
    ctx.reverse = reverse
    ctx.has_bias = (b_ih is not None, b_hh is not None)
    ctx.mark_non_differentiable(saved)
    # Unused outputs' gradients stay None instead of zero tensors (saved alone is 5x the
    # output): the backward treats None as zero.
    ctx.set_materialize_grads(False)


def _backward(ctx, grad_output, grad_hn, _grad_saved):
    if not ctx.need_backward:
        raise RuntimeError("gru_cuda: this forward ran with need_backward=False and kept nothing "
                           "for a backward; run it with need_backward=True")
    input, w_ih, w_hh, saved, lengths = ctx.saved_tensors
    T, N, _ = input.shape
    H = w_hh.shape[1]
    if grad_output is None:
        grad_output = input.new_zeros(T, N, H)
    if grad_hn is None:
        grad_hn = input.new_zeros(N, H)
    d_input, d_hx, d_w_ih, d_w_hh, d_b_ih, d_b_hh = torch.ops.gru_cuda.gru_backward(
        grad_output, grad_hn, input, w_ih, w_hh, saved, ctx.reverse, lengths)
    has_b_ih, has_b_hh = ctx.has_bias
    return (d_input, d_hx, d_w_ih, d_w_hh, d_b_ih if has_b_ih else None,
            d_b_hh if has_b_hh else None, None, None, None)


torch.library.register_autograd("gru_cuda::gru_forward", _backward, setup_context=_setup_context)
