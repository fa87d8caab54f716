"""The CUDA per-step path's GEMMs on cuBLAS directly (gru_cuda.direct_gemm): the switch and
its environment variable everywhere; on a GPU, parity with nn.GRU in every dtype, both
of cuDNN's float32 precisions (full fp32 tightly, TF32 at TF32's tolerance, and TF32
shown to be what ran), packed and bidirectional, under graph replay, with the counts
proving that the GEMMs ran directly and none was left to ATen."""
import itertools
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import gru_cuda
from conftest import assert_close, fwd_bwd, rel_err
from gru_cuda import direct_blas, graph_replay, precision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True)
def eager_steps():
    """Loops run eagerly unless a test replays them: auto mode's replay table must not
    decide what a test counts."""
    with gru_cuda.replay(False):
        yield


def test_switch_is_off_by_default_and_restored():
    assert gru_cuda.set_direct_gemm(False) is False
    with gru_cuda.direct_gemm():
        assert gru_cuda.set_direct_gemm(True) is True
    assert gru_cuda.set_direct_gemm(False) is False


@pytest.mark.parametrize("value,expected", [("1", "True"), ("0", "False")])
def test_environment_sets_the_switch(value, expected):
    done = subprocess.run(
        [sys.executable, "-c", "import gru_cuda; print(gru_cuda.set_direct_gemm(False))"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "GRU_CUDA_DIRECT_GEMM": value})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == expected


def test_environment_other_than_0_or_1_is_an_error():
    done = subprocess.run(
        [sys.executable, "-c", "import gru_cuda; gru_cuda.set_direct_gemm(False)"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "GRU_CUDA_DIRECT_GEMM": "yes"})
    assert done.returncode != 0
    assert "GRU_CUDA_DIRECT_GEMM must be 0 or 1, got 'yes'" in done.stderr


def test_cpu_layers_keep_atens_gemms():
    torch.manual_seed(201)
    model = gru_cuda.GRU(5, 6, bidirectional=True)
    x = torch.randn(4, 3, 5)
    expected, _ = model(x)
    before = direct_blas.counts()
    with gru_cuda.direct_gemm():
        got, _ = model(x)
    assert torch.equal(got, expected) and direct_blas.counts() == before


def _models(dtype, I=24, H=40, layers=2, bidirectional=True):
    torch.manual_seed(202)
    theirs = nn.GRU(I, H, num_layers=layers, bidirectional=bidirectional, device="cuda")
    ours = gru_cuda.GRU(I, H, num_layers=layers, bidirectional=bidirectional, device="cuda",
                        dtype=dtype)
    ours.load_state_dict(theirs.state_dict())
    theirs.load_state_dict(ours.state_dict())  # the truth uses the rounded weights
    return ours, theirs.to(torch.float64 if dtype == torch.float64 else torch.float32)


def _both_directions_at_once(model, layer):
    """Whether the layer's steps run both directions' recurrent products as one
    strided-batched call: W_hh's reverse matrix lies after the forward one."""
    if not model.bidirectional:
        return False
    forward = getattr(model, f"weight_hh_l{layer}")
    reverse = getattr(model, f"weight_hh_l{layer}_reverse")
    return reverse.data_ptr() > forward.data_ptr()


def _expected_counts(model, calls, replayed=False):
    """The cuBLAS calls of forward+backwards with every gradient, one per list of live
    rows a step in calls, and how many of them covered both directions. Per layer: the
    input projection, the input's gradient and 3 weight gradients a direction; unless the
    loops replay from graphs, per step and pass one call a direction, or one for both
    where W_hh's matrices allow it (the backward only where both directions' live rows
    agree)."""
    D = 2 if model.bidirectional else 1
    gemms = batched = 0
    for batch_sizes, layer in itertools.product(calls, range(model.num_layers)):
        gemms += 2 + 3 * D
        if replayed:
            continue
        together = _both_directions_at_once(model, layer)
        T = len(batch_sizes)
        for t in range(T):
            for at_once in (together, together and batch_sizes[t] == batch_sizes[T - 1 - t]):
                gemms += 1 if at_once else D
                batched += int(at_once)
    return {"gemms": gemms, "batched": batched, "declined": 0}


def _counted(fn, model, calls, replayed=False):
    """fn() on the per-step path with the direct GEMMs; asserts that each of its GEMMs ran
    directly, as many in one call as W_hh's layout allows, and none was left to ATen."""
    before = direct_blas.counts()
    with gru_cuda.direct_gemm(), gru_cuda.persistent(False):
        got = fn()
    torch.cuda.synchronize()
    after = direct_blas.counts()
    ran = {k: after[k] - before[k] for k in after}
    assert ran == _expected_counts(model, calls, replayed)
    return got


def _direct_fwd_bwd(model, x, hx, replayed=False):
    steps = x.shape[1] if model.batch_first else x.shape[0]
    batch = x.shape[0] if model.batch_first else x.shape[1]
    return _counted(lambda: fwd_bwd(model, x, hx), model, [[batch] * steps], replayed)


def _place_w_hh(model, reverse_first):
    """Each layer's two W_hh matrices as the two halves of one buffer: the reverse one
    after the forward one (one strided-batched call for both), or before it (one call
    each)."""
    for layer in range(model.num_layers):
        forward = getattr(model, f"weight_hh_l{layer}")
        reverse = getattr(model, f"weight_hh_l{layer}_reverse")
        pair = torch.empty((2, *forward.shape), device=forward.device, dtype=forward.dtype)
        order = (reverse, forward) if reverse_first else (forward, reverse)
        for slot, weight in zip(pair, order):
            slot.copy_(weight.detach())
            weight.data = slot
    return model


@cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_matches_nn_gru_in_full_precision(dtype):
    ours, theirs = _models(dtype)
    x = torch.randn(7, 5, 24, device="cuda").to(dtype).requires_grad_()
    hx = torch.randn(4, 5, 40, device="cuda").to(dtype).requires_grad_()
    got = _direct_fwd_bwd(ours, x, hx)
    truth_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    expected = fwd_bwd(theirs, x.detach().to(truth_dtype).requires_grad_(),
                       hx.detach().to(truth_dtype).requires_grad_())
    for i, (a, b) in enumerate(zip(got, expected)):
        if dtype in (torch.float16, torch.bfloat16):
            assert rel_err(a, b) < 2e-2, f"tensor {i}"
        else:
            assert_close(a, b.to(dtype), dtype, f"tensor {i}")


@cuda
@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_capability()[0] < 8,
                    reason="TF32 needs an Ampere or newer GPU")
def test_float32_follows_cudnns_rnn_setting():
    """With cuDNN's RNNs allowed TF32, our GEMMs run TF32 too: as close to nn.GRU TF32 as
    TF32 allows, and measurably apart from our own full-fp32 results."""
    ours, theirs = _models(torch.float32, I=256, H=256, layers=1, bidirectional=False)
    x = torch.randn(20, 8, 256, device="cuda", requires_grad=True)
    hx = torch.randn(1, 8, 256, device="cuda", requires_grad=True)
    ieee = _direct_fwd_bwd(ours, x, hx)
    with precision.cudnn_rnn_tf32(True):
        tf32 = _direct_fwd_bwd(ours, x, hx)
        expected = fwd_bwd(theirs, x, hx)
    for i, (a, b, c) in enumerate(zip(tf32, expected, ieee)):
        assert rel_err(a, b) < 2e-2, f"tensor {i} against nn.GRU TF32"
        assert rel_err(a, c) > 1e-6, f"tensor {i}: bitwise full fp32, TF32 did not run"


@cuda
@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_capability()[0] < 8,
                    reason="TF32 needs an Ampere or newer GPU")
def test_the_recurrent_product_follows_cudnns_rnn_setting():
    """With x = 0 and zero input biases the input projection is exactly zero in either
    precision, so h_n parts from full fp32 only if the recurrent GEMMs ran TF32."""
    ours, _ = _models(torch.float32, I=256, H=256, layers=1, bidirectional=False)
    with torch.no_grad():
        ours.bias_ih_l0.zero_()
    x = torch.zeros(20, 8, 256, device="cuda", requires_grad=True)
    hx = torch.randn(1, 8, 256, device="cuda", requires_grad=True)
    ieee = _direct_fwd_bwd(ours, x, hx)
    with precision.cudnn_rnn_tf32(True):
        tf32 = _direct_fwd_bwd(ours, x, hx)
    assert rel_err(tf32[1], ieee[1]) > 1e-6, "h_n bitwise full fp32: the recurrent GEMMs ran fp32"
    assert rel_err(tf32[1], ieee[1]) < 2e-2


@cuda
def test_packed_input():
    ours, theirs = _models(torch.float32)
    x = torch.randn(9, 5, 24, device="cuda", requires_grad=True)
    lengths = torch.tensor([9, 3, 7, 1, 5])

    def run(model):
        out, h_n = model(nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False))
        grads = torch.autograd.grad(out.data.sum() + h_n.sum(), [x, *model.parameters()])
        return [out.data, h_n, *grads]
    batch_sizes = [int((lengths > t).sum()) for t in range(9)]
    got = _counted(lambda: run(ours), ours, [batch_sizes])
    for i, (a, b) in enumerate(zip(got, run(theirs))):
        assert_close(a, b, torch.float32, f"tensor {i}")


@cuda
@pytest.mark.parametrize("reverse_first", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_both_directions_in_one_call_where_w_hh_allows(reverse_first, dtype):
    """Bidirectional steps with W_hh's reverse matrix after the forward one: one
    strided-batched call a step (the packed backward only where both directions' live
    rows agree); before it, one call a direction. Both against nn.GRU, the counts proving
    which ran."""
    ours, theirs = _models(dtype)
    _place_w_hh(ours, reverse_first)
    assert _both_directions_at_once(ours, 0) == (not reverse_first)
    x = torch.randn(9, 5, 24, device="cuda").to(dtype).requires_grad_()
    hx = torch.randn(4, 5, 40, device="cuda").to(dtype).requires_grad_()
    lengths = torch.tensor([9, 3, 7, 1, 9])

    def run(model, x, hx):
        padded = fwd_bwd(model, x, hx)
        out, h_n = model(nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False), hx)
        packed = torch.autograd.grad(out.data.sum() + h_n.sum(), [x, hx, *model.parameters()])
        return [*padded, out.data, h_n, *packed]
    calls = [[5] * 9, [int((lengths > t).sum()) for t in range(9)]]
    got = _counted(lambda: run(ours, x, hx), ours, calls)
    truth = theirs.weight_hh_l0.dtype
    expected = run(theirs, x.detach().to(truth).requires_grad_(),
                   hx.detach().to(truth).requires_grad_())
    for i, (a, b) in enumerate(zip(got, expected)):
        if dtype == torch.bfloat16:
            assert rel_err(a, b) < 2e-2, f"tensor {i}"
        else:
            assert_close(a, b.to(dtype), dtype, f"tensor {i}")


@cuda
def test_batch_first_input_and_its_gradient_as_views():
    """batch_first hands the op a transposed input, whose gradient keeps that layout."""
    torch.manual_seed(203)
    theirs = nn.GRU(24, 40, batch_first=True, device="cuda")
    ours = gru_cuda.GRU(24, 40, batch_first=True, device="cuda")
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(5, 9, 24, device="cuda", requires_grad=True)
    hx = torch.randn(1, 5, 40, device="cuda", requires_grad=True)
    got = _direct_fwd_bwd(ours, x, hx)
    for i, (a, b) in enumerate(zip(got, fwd_bwd(theirs, x, hx))):
        assert_close(a, b, torch.float32, f"tensor {i}")


@cuda
def test_replayed_loops_with_direct_gemms_match_eager_bitwise():
    ours, _ = _models(torch.float32)
    x = torch.randn(6, 4, 24, device="cuda", requires_grad=True)
    hx = torch.randn(4, 4, 40, device="cuda", requires_grad=True)
    eager = _direct_fwd_bwd(ours, x, hx)
    before = graph_replay.counts()
    with gru_cuda.replay("always"):
        _direct_fwd_bwd(ours, x, hx)  # captured: the loops' GEMMs ran once, under capture
        replayed = _direct_fwd_bwd(ours, x, hx, replayed=True)
    assert graph_replay.counts()["hits"] > before["hits"]
    for i, (a, b) in enumerate(zip(replayed, eager)):
        assert torch.equal(a, b), f"tensor {i}"
