"""Autograd beyond one backward, as nn.GRU supports it: double backward, forward-mode AD,
the torch.func transforms, frozen inputs and weights."""
import pytest
import torch
import torch.autograd.forward_ad as fwAD
from torch import nn
from torch.func import functional_call, grad, jacfwd, jacrev, jvp, vmap
from torch.nn.utils.rnn import pack_padded_sequence

import gru_cuda
from conftest import assert_close

F64 = torch.float64


def pair(device, **kwargs):
    torch.manual_seed(61)
    ours = gru_cuda.GRU(**kwargs, device=device, dtype=F64)
    theirs = nn.GRU(**kwargs, device=device, dtype=F64)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def native(device):
    """nn.GRU as the truth for higher-order and forward-mode derivatives: cuDNN supports
    neither, so on CUDA it runs PyTorch's own GRU."""
    return torch.backends.cudnn.flags(enabled=False)


def outputs_of(model, x, params=None):
    out, h_n = functional_call(model, params, (x,)) if params is not None else model(x)
    data = out.data if isinstance(out, nn.utils.rnn.PackedSequence) else out
    return data, h_n


@pytest.mark.parametrize("packed", [False, True])
def test_gradgradcheck(device, packed):
    model, _ = pair(device, input_size=3, hidden_size=4, num_layers=2, bidirectional=True)
    names = [n for n, _ in model.named_parameters()]
    x = torch.randn(4, 3, 3, device=device, dtype=F64, requires_grad=True)
    lengths = torch.tensor([4, 1, 3])

    def f(x, *params):
        inp = pack_padded_sequence(x, lengths, enforce_sorted=False) if packed else x
        return outputs_of(model, inp, dict(zip(names, params)))

    assert torch.autograd.gradgradcheck(f, (x, *model.parameters()), eps=1e-6, atol=1e-5,
                                        fast_mode=True)


def test_gradgradcheck_cell(device):
    torch.manual_seed(62)
    cell = gru_cuda.GRUCell(3, 4, device=device, dtype=F64)
    x = torch.randn(2, 3, device=device, dtype=F64, requires_grad=True)
    h = torch.randn(2, 4, device=device, dtype=F64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, h, *p: functional_call(
        cell, dict(zip([n for n, _ in cell.named_parameters()], p)), (x, h)),
        (x, h, *cell.parameters()))


def test_gradient_penalty_matches_nn_gru(device):
    """loss.backward(create_graph=True), as a gradient penalty uses it."""
    ours, theirs = pair(device, input_size=3, hidden_size=5, num_layers=2)
    x = torch.randn(6, 2, 3, device=device, dtype=F64, requires_grad=True)
    results = []
    for model in (ours, theirs):
        with native(device):
            out, _ = model(x)
            (dx,) = torch.autograd.grad((out ** 2).sum(), x, create_graph=True)
            penalty = (dx ** 2).sum()
            results.append(torch.autograd.grad(penalty, list(model.parameters())))
    for a, b in zip(*results):
        assert_close(a, b, F64, "second-order gradient")


def test_the_plain_backward_stays_fused(device, monkeypatch):
    """Without create_graph the fused backward runs, not the differentiable route."""
    from gru_cuda import plain_layer
    calls = []
    monkeypatch.setattr(plain_layer, "gru_layer", lambda *a: calls.append(1))
    model, _ = pair(device, input_size=3, hidden_size=4)
    out, _ = model(torch.randn(5, 2, 3, device=device, dtype=F64, requires_grad=True))
    out.sum().backward()
    assert calls == [] and model.weight_hh_l0.grad is not None


@pytest.mark.parametrize("packed", [False, True])
def test_jvp_and_forward_ad_match_nn_gru(device, packed):
    ours, theirs = pair(device, input_size=3, hidden_size=4, bidirectional=True)
    x, tangent = (torch.randn(5, 3, 3, device=device, dtype=F64) for _ in range(2))
    template = pack_padded_sequence(x, torch.tensor([5, 2, 4]), enforce_sorted=False)
    if packed:  # packing has no forward AD in PyTorch: differentiate the packed data
        x, tangent = template.data, torch.randn_like(template.data)

    def run(model, x):
        inp = template._replace(data=x) if packed else x
        return outputs_of(model, inp)

    if packed:  # nn.GRU has no forward AD on packed input: central differences instead
        eps = 1e-6
        plus, minus = run(theirs, x + eps * tangent), run(theirs, x - eps * tangent)
        expected = [(a - b) / (2 * eps) for a, b in zip(plus, minus)]
    else:
        with native(device):
            expected = jvp(lambda x: run(theirs, x), (x,), (tangent,))[1]
    got = jvp(lambda x: run(ours, x), (x,), (tangent,))[1]
    close = (lambda a, b, what: torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)) \
        if packed else (lambda a, b, what: assert_close(a, b, F64, what))
    for a, b in zip(got, expected):
        assert b.abs().max() > 0
        close(a, b, "jvp tangent")
    with fwAD.dual_level():
        out, h_n = run(ours, fwAD.make_dual(x, tangent))
        dual_tangents = [fwAD.unpack_dual(t).tangent for t in (out, h_n)]
    for a, b in zip(dual_tangents, expected):
        close(a, b, "forward_ad tangent")


def test_jacfwd_jacrev_and_grad_of_parameters(device):
    ours, theirs = pair(device, input_size=2, hidden_size=3)
    x = torch.randn(4, 1, 2, device=device, dtype=F64)

    def loss(model):
        names = [n for n, _ in model.named_parameters()]
        return lambda *p: outputs_of(model, x, dict(zip(names, p)))[1].sum()

    params = tuple(p.detach() for p in ours.parameters())
    with native(device):
        expected = grad(loss(theirs), argnums=tuple(range(4)))(*params)
    for transform in (grad, jacrev, jacfwd):
        got = transform(loss(ours), argnums=tuple(range(4)))(*params)
        for a, b in zip(got, expected):
            assert_close(a, b, F64, transform.__name__)


def test_vmap_over_unbatched_sequences(device):
    ours, _ = pair(device, input_size=3, hidden_size=4)
    xs = torch.randn(5, 6, 3, device=device, dtype=F64)  # 5 sequences of length 6
    outs, h_ns = vmap(lambda x: ours(x))(xs)
    for i in range(5):
        out, h_n = ours(xs[i])
        assert_close(outs[i], out, F64, "vmap output")
        assert_close(h_ns[i], h_n, F64, "vmap h_n")


def test_frozen_weights_skip_their_gemms(device):
    """needs_input_grad is honoured: with the weights frozen, the backward's only
    input-sized GEMM is the one for the input's gradient."""
    model, _ = pair(device, input_size=3, hidden_size=4)
    model.requires_grad_(False)
    x = torch.randn(5, 2, 3, device=device, dtype=F64, requires_grad=True)
    out, _ = model(x)
    with torch.profiler.profile() as prof:
        (dx,) = torch.autograd.grad(out.sum(), x)
    mm_calls = sum(e.count for e in prof.key_averages() if e.key == "aten::mm")
    assert mm_calls == 1 and dx.shape == x.shape
    model.requires_grad_(True)
    out, _ = model(x.detach())
    with torch.profiler.profile() as prof:
        grads = torch.autograd.grad(out.sum(), list(model.parameters()))
    assert sum(e.count for e in prof.key_averages() if e.key == "aten::mm") == 3  # dW_ih, dW_hh
    assert all(g is not None for g in grads)


@pytest.mark.parametrize("packed", [False, True])
def test_plain_layer_matches_nn_gru(packed):
    """The plain-autograd route itself (gru_cuda.plain_layer), both directions."""
    from gru_cuda import plain_layer
    torch.manual_seed(64)
    theirs = torch.nn.GRU(3, 4, bidirectional=True, dtype=F64)
    x, hx = torch.randn(5, 3, 3, dtype=F64), torch.randn(2, 3, 4, dtype=F64)
    batch_sizes = None
    inp = x
    if packed:
        inp = pack_padded_sequence(x, torch.tensor([5, 3, 2]))
        x, batch_sizes = inp.data, inp.batch_sizes
    out, h_n = plain_layer.gru_layer(x, hx, list(theirs.parameters()), True, True, batch_sizes)
    expected, expected_h = theirs(inp, hx)
    assert_close(out, expected.data if packed else expected, F64, "output")
    assert_close(h_n, expected_h, F64, "h_n")


def test_batched_gradients_match_nn_gru(device):
    """is_grads_batched=True and jacobian(vectorize=True): a batch of cotangents through
    autograd's own vmap."""
    ours, theirs = pair(device, input_size=3, hidden_size=4, bidirectional=True)
    x = torch.randn(5, 2, 3, device=device, dtype=F64, requires_grad=True)
    cotangents = torch.randn(6, 5, 2, 8, device=device, dtype=F64)
    results = []
    for model in (ours, theirs):
        with native(device):
            out, _ = model(x)
            results.append(torch.autograd.grad(out, [x, *model.parameters()], cotangents,
                                               is_grads_batched=True, retain_graph=True))
            results.append(torch.autograd.functional.jacobian(
                lambda inp: model(inp)[1], x.detach(), vectorize=True))
            # torch.func's vmap runs the fused backward through its batching rule
            results.append(vmap(lambda v: torch.autograd.grad(out, x, v, retain_graph=True)[0])(
                cotangents))
    for a, b in zip(results[0] + tuple(results[1:3]), results[3] + tuple(results[4:6])):
        assert_close(a, b, F64, "batched gradient")


@pytest.mark.parametrize("module", ["GRU train", "GRU eval", "GRUCell"])
def test_gradcheck_with_batched_grads_as_pytorch_module_tests(module):
    """PyTorch's own module tests run gradcheck and gradgradcheck this way."""
    torch.manual_seed(65)
    if module == "GRUCell":
        model = gru_cuda.GRUCell(3, 4, dtype=F64)
        inputs = (torch.randn(2, 3, dtype=F64, requires_grad=True),
                  torch.randn(2, 4, dtype=F64, requires_grad=True))
    else:
        model = gru_cuda.GRU(3, 4, num_layers=2, bidirectional=True, dtype=F64)
        model.train(module == "GRU train")
        inputs = (torch.randn(3, 2, 3, dtype=F64, requires_grad=True),
                  torch.randn(4, 2, 4, dtype=F64, requires_grad=True))
    params = tuple(model.parameters())
    names = [n for n, _ in model.named_parameters()]

    def fn(*args):
        out = functional_call(model, dict(zip(names, args[2:])), args[:2])
        return out if isinstance(out, torch.Tensor) else torch.cat([o.flatten() for o in out])
    args = inputs + params
    assert torch.autograd.gradcheck(fn, args, check_batched_grad=True)
    assert torch.autograd.gradgradcheck(fn, args, check_batched_grad=True)
