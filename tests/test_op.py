"""The fused op itself: against the textbook reference, gradcheck, opcheck, the
lengths semantics, poisoned buffers and determinism."""
import pytest
import torch

from gru_cuda import reference
from conftest import assert_close

op = torch.ops.gru_cuda.gru_forward


def random_layer(T, N, I, H, device, dtype, bias=True, requires_grad=False):
    kw = {"device": device, "dtype": dtype, "requires_grad": requires_grad}
    x = torch.randn(T, N, I, **kw)
    h0 = torch.randn(N, H, **kw)
    w_ih = torch.randn(3 * H, I, **kw) * 0.5
    w_hh = torch.randn(3 * H, H, **kw) * 0.5
    if requires_grad:
        w_ih, w_hh = w_ih.detach().requires_grad_(), w_hh.detach().requires_grad_()
    b_ih = torch.randn(3 * H, **kw) if bias else None
    b_hh = torch.randn(3 * H, **kw) if bias else None
    return x, h0, w_ih, w_hh, b_ih, b_hh


def reference_layer(x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False, return_module=False):
    """The textbook loop with the op's weights (nn.GRU layout)."""
    H = w_hh.shape[1]
    ref = reference.GRUReference(x.shape[2], H, device=x.device, dtype=x.dtype)
    holder = torch.nn.Module()
    holder.weight_ih_l0, holder.weight_hh_l0 = w_ih, w_hh
    holder.bias = b_ih is not None
    if holder.bias:
        holder.bias_ih_l0, holder.bias_hh_l0 = b_ih, b_hh
    reference.load_nn_gru_weights(ref, holder)
    xs = x.flip(0) if reverse else x
    out, h = ref(xs, h0)
    out = out.flip(0) if reverse else out
    return (out, h, ref.cell) if return_module else (out, h)


def reference_grads(cell, has_bias):
    """The reference's parameter gradients in the op's layout (w_ih, w_hh, b_ih, b_hh)."""
    def stack(prefix, transpose):
        parts = [getattr(cell, f"{prefix}{g}").grad for g in "rzh"]
        return torch.cat([p.t() for p in parts] if transpose else parts, 0)
    grads = [stack("W_x", True), stack("W_h", True)]
    grads += [stack("b_x", False), stack("b_h", False)] if has_bias else []
    return grads


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_op_matches_reference(device, dtype, reverse, bias):
    torch.manual_seed(11)
    args = random_layer(9, 4, 5, 7, device, dtype, bias)
    out, h_n, saved = op(*args, reverse, None)
    ref_out, ref_h = reference_layer(*args, reverse=reverse)
    assert_close(out, ref_out, dtype, "output")
    assert_close(h_n, ref_h, dtype, "h_n")
    assert saved.shape == (9, 4, 5 * 7)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_op_gradients_match_reference(device, dtype):
    torch.manual_seed(12)
    for reverse in (False, True):
        args = random_layer(6, 3, 4, 5, device, dtype, requires_grad=True)
        out, h_n, _ = op(*args, reverse, None)
        ref_out, ref_h, cell = reference_layer(*args, reverse=reverse, return_module=True)
        w_out, w_h = torch.randn_like(out), torch.randn_like(h_n)
        ours = torch.autograd.grad((out * w_out).sum() + (h_n * w_h).sum(), args)
        x, h0 = args[:2]
        ((ref_out * w_out).sum() + (ref_h * w_h).sum()).backward()
        theirs = [x.grad, h0.grad] + reference_grads(cell, has_bias=True)
        for i, (a, b) in enumerate(zip(ours, theirs)):
            assert_close(a, b, dtype, f"gradient of argument {i}")


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True])
def test_gradcheck(device, reverse, with_lengths):
    torch.manual_seed(13)
    args = random_layer(5, 3, 4, 3, device, torch.float64, requires_grad=True)
    lengths = torch.tensor([5, 2, 4], device=device) if with_lengths else None

    def f(*a):
        out, h_n, _ = op(*a, reverse, lengths)
        return out, h_n

    assert torch.autograd.gradcheck(f, args, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("reverse", [False, True])
def test_lengths_equal_per_row_runs(device, reverse):
    """A row of length L behaves as that row alone over its first L steps; the rest of
    its output is zero and its final state is the state after step L."""
    torch.manual_seed(14)
    dtype = torch.float64
    lengths = [6, 1, 4, 0, 6]
    x, h0, w_ih, w_hh, b_ih, b_hh = random_layer(6, 5, 3, 4, device, dtype)
    out, h_n, _ = op(x, h0, w_ih, w_hh, b_ih, b_hh, reverse,
                     torch.tensor(lengths, device=device))
    for row, L in enumerate(lengths):
        assert torch.equal(out[L:, row], torch.zeros_like(out[L:, row]))
        if L == 0:
            assert torch.equal(h_n[row], h0[row])
            continue
        ref_out, ref_h = reference_layer(x[:L, row:row + 1], h0[row:row + 1], w_ih, w_hh,
                                         b_ih, b_hh, reverse=reverse)
        assert_close(out[:L, row], ref_out[:, 0], dtype, f"row {row} output")
        assert_close(h_n[row], ref_h[0], dtype, f"row {row} h_n")


def test_outputs_fully_written_over_poisoned_memory(device):
    """Run once on NaN inputs so freed buffers hold NaN, then on real inputs: any
    element the kernels fail to write shows up as NaN."""
    torch.manual_seed(15)
    args = random_layer(8, 6, 5, 9, device, torch.float32, requires_grad=True)
    lengths = torch.tensor([8, 3, 8, 1, 5, 8], device=device)
    for poison in (True, False):
        a = [torch.full_like(t, float("nan")) if poison else t for t in args]
        out, h_n, saved = op(*a, False, lengths)
        grads = torch.autograd.grad(out.sum() + h_n.sum(), args, allow_unused=False) \
            if not poison else None
        del a
    assert torch.isfinite(out).all() and torch.isfinite(h_n).all() and torch.isfinite(saved).all()
    assert all(torch.isfinite(g).all() for g in grads)


def test_backward_is_deterministic(device):
    torch.manual_seed(16)
    args = random_layer(20, 16, 12, 24, device, torch.float32, requires_grad=True)
    lengths = torch.randint(1, 21, (16,), device=device)
    runs = []
    for _ in range(2):
        out, h_n, _ = op(*args, True, lengths)
        runs.append(torch.autograd.grad((out * out).sum() + h_n.sum(), args))
    for a, b in zip(*runs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("with_lengths", [False, True])
def test_opcheck(device, with_lengths):
    torch.manual_seed(17)
    args = random_layer(4, 3, 5, 6, device, torch.float32, requires_grad=True)
    lengths = torch.tensor([4, 1, 3], device=device) if with_lengths else None
    torch.library.opcheck(op, (*args, True, lengths))
    x, h0, w_ih, w_hh, b_ih, b_hh = [a.detach() for a in args]
    _, _, saved = op(x, h0, w_ih, w_hh, b_ih, b_hh, False, lengths)
    grad_out, grad_hn = torch.randn(4, 3, 6, device=device), torch.randn(3, 6, device=device)
    torch.library.opcheck(torch.ops.gru_cuda.gru_backward,
                          (grad_out, grad_hn, x, w_ih, w_hh, saved, False, lengths))


def test_empty_batch_and_single_step(device):
    args = random_layer(1, 2, 3, 4, device, torch.float64)
    out, h_n, _ = op(*args, False, None)
    ref_out, ref_h = reference_layer(*args)
    assert_close(out, ref_out, torch.float64, "single step")
    args = random_layer(3, 0, 3, 4, device, torch.float64)
    out, h_n, _ = op(*args, False, None)
    assert out.shape == (3, 0, 4) and h_n.shape == (0, 4)


@pytest.mark.parametrize("gate", ["r", "n"])
def test_float32_gate_functions_are_accurate(device, gate):
    """The CPU kernels use their own vectorizable exp/tanh: check sigmoid (r) and tanh (n)
    over a wide range against float64, through the saved gate values."""
    t = torch.linspace(-30, 30, 100001, device=device)
    x = t.view(1, -1, 1)
    w_ih = torch.zeros(3, 1, device=device)
    w_ih[0 if gate == "r" else 2, 0] = 1.0
    w_hh = torch.zeros(3, 1, device=device)
    h0 = torch.zeros(t.numel(), 1, device=device)
    _, _, saved = op(x, h0, w_ih, w_hh, None, None, False, None)
    got = saved[0, :, 0 if gate == "r" else 2].double()
    expected = torch.sigmoid(t.double()) if gate == "r" else torch.tanh(t.double())
    rel = (got - expected).abs() / expected.abs().clamp_min(1e-30)
    assert rel.max() < 1e-6


def test_inference_path_saves_nothing_and_matches(device):
    torch.manual_seed(18)
    args = random_layer(6, 4, 5, 7, device, torch.float32)
    lengths = torch.tensor([6, 2, 5, 1], device=device)
    out, h_n, saved = op(*args, True, lengths, True)
    out_inf, h_inf, saved_inf = op(*args, True, lengths, False)
    assert saved_inf.numel() == 0 and saved.shape == (6, 4, 35)
    assert torch.equal(out, out_inf) and torch.equal(h_n, h_inf)
    torch.library.opcheck(op, (*args, False, None, False))


def test_backward_after_inference_forward_is_a_clear_error(device):
    args = random_layer(3, 2, 4, 5, device, torch.float32, requires_grad=True)
    out, _, _ = op(*args, False, None, False)
    with pytest.raises(RuntimeError, match="ran with need_backward=False"):
        out.sum().backward()
