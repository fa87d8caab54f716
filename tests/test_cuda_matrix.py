"""Parity with nn.GRU (cuDNN) on every CUDA kernel instantiation: H in {128, 256, 512,
1024} (the persistent kernels' 8-, 16- and 32-chunk forms, shared memory past 48 KB),
N in {1, 8, 64, 128}, one and two directions, padded and packed, float32, float16,
bfloat16 and float64; forward and every gradient, on the per-step and the persistent path.
On the persistent path a layer the plan takes must run there (require mode, counts), in
the form the plan chose (H=128 local on a Hopper card, the rest the grid form); for the
half types also with the grid form on tensor cores; where the local form takes W_hh in
registers, also with them; where the cluster form runs (a Hopper card), also with it, and
for the half types on tensor cores."""
import itertools

import pytest
import torch
from torch import nn

import gru_cuda
from conftest import assert_close, cuda_path, rel_err
from gru_cuda import persistent_kernels
from gru_cuda._switches import mode_within

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

HIDDEN, BATCH = (128, 256, 512, 1024), (1, 8, 64, 128)
T, INPUT = 6, 24


def _cases():
    """float32 on the whole grid; the other dtypes on all H and N, alternating between
    one direction padded and two directions packed."""
    cases = [(H, N, D, packed, torch.float32)
             for H, N, D, packed in itertools.product(HIDDEN, BATCH, (1, 2), (False, True))]
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        for i, (H, N) in enumerate(itertools.product(HIDDEN, BATCH)):
            two = i % 2 == 1
            cases.append((H, N, 2 if two else 1, two, dtype))
    return cases


def _poison_allocator():
    """Fill the caching allocator's free blocks with NaN, so that an output element the
    kernels never write shows up instead of passing as a stale, plausible value."""
    nan = float("nan")
    blocks = [torch.full((16 << 20,), nan, device="cuda")]
    blocks += [torch.full((64 << 10,), nan, device="cuda") for _ in range(64)]
    del blocks


def _fwd_bwd(model, x, hx, lengths, grad_seed):
    """Output (data), h_n and the gradients of x, hx and every parameter, for fixed
    random output gradients."""
    inp = x if lengths is None else nn.utils.rnn.pack_padded_sequence(
        x, lengths, enforce_sorted=False)
    out, h_n = model(inp, hx)
    data = out if lengths is None else out.data
    g = torch.Generator(device="cpu").manual_seed(grad_seed)
    grad_data = torch.randn(data.shape, generator=g).to(data)
    grad_h = torch.randn(h_n.shape, generator=g).to(h_n)
    grads = torch.autograd.grad((data, h_n), [x, hx, *model.parameters()], (grad_data, grad_h))
    return [data, h_n, *grads]


@pytest.mark.parametrize("path", ["per-step", "persistent", "persistent+mma",
                                  "persistent+registers", "persistent+cluster",
                                  "persistent+cluster+mma"])
@pytest.mark.parametrize("H,N,D,packed,dtype", _cases())
def test_matches_nn_gru(H, N, D, packed, dtype, path):
    mma, registers = path.endswith("+mma"), path == "persistent+registers"
    cluster = "+cluster" in path
    if mma and dtype not in (torch.float16, torch.bfloat16):
        pytest.skip("tensor cores are for the half types")
    if registers and not persistent_kernels.plan(H, N, D, dtype, registers=True)["register_chunks"]:
        pytest.skip("the plan keeps W_hh in shared memory here")
    if cluster and persistent_kernels.plan(H, N, D, dtype, mma=mma,
                                           cluster=True)["form"] != "cluster":
        pytest.skip("the cluster form does not run here")
    seed = H * 1000 + N * 10 + D * 2 + packed
    torch.manual_seed(seed)
    theirs = nn.GRU(INPUT, H, bidirectional=D == 2, device="cuda")
    ours = gru_cuda.GRU(INPUT, H, bidirectional=D == 2, device="cuda", dtype=dtype)
    ours.load_state_dict(theirs.state_dict())  # rounded to dtype
    truth_dtype = torch.float64 if dtype == torch.float64 else torch.float32
    theirs.load_state_dict(ours.state_dict())  # the truth uses the rounded weights
    theirs.to(truth_dtype)
    x = torch.randn(T, N, INPUT, device="cuda").to(dtype).requires_grad_()
    hx = torch.randn(D, N, H, device="cuda").to(dtype).requires_grad_()
    lengths = torch.randint(1, T + 1, (N,)) if packed else None
    if lengths is not None:
        lengths[0] = T

    x_t = x.detach().to(truth_dtype).requires_grad_()
    hx_t = hx.detach().to(truth_dtype).requires_grad_()
    expected = _fwd_bwd(theirs, x_t, hx_t, lengths, seed)

    plan = persistent_kernels.plan(H, N, D, dtype, mma=mma, registers=registers, cluster=cluster)
    runs = 1 if path != "per-step" and plan["refusal"] == "none" else 0
    local_runs = runs if plan["form"] == "local" else 0
    cluster_runs = runs if plan["form"] == "cluster" else 0
    if path == "persistent+cluster+mma":
        assert plan["mma"], "the cluster form would run on FFMA: the test would prove nothing"
    before = persistent_kernels.counts()
    _poison_allocator()
    with mode_within(persistent_kernels.set_mma, mma), \
            mode_within(persistent_kernels.set_registers, registers), \
            mode_within(persistent_kernels.set_cluster, cluster), \
            cuda_path(path.split("+")[0]):
        got = _fwd_bwd(ours, x, hx, lengths, seed)
    torch.cuda.synchronize()
    after = persistent_kernels.counts()
    grid_mma_runs = runs if plan["mma"] and plan["form"] == "grid" else 0
    assert after["grid_forward_mma"] - before["grid_forward_mma"] == grid_mma_runs
    assert after["grid_backward_mma"] - before["grid_backward_mma"] == grid_mma_runs
    cluster_mma_runs = cluster_runs if plan["mma"] else 0
    assert after["cluster_forward_mma"] - before["cluster_forward_mma"] == cluster_mma_runs
    assert after["cluster_backward_mma"] - before["cluster_backward_mma"] == cluster_mma_runs
    assert after["forward"] - before["forward"] == runs
    assert after["backward"] - before["backward"] == runs
    assert after["local_forward"] - before["local_forward"] == local_runs
    assert after["local_backward"] - before["local_backward"] == local_runs
    register_runs = runs if plan["register_chunks"] else 0
    assert after["local_forward_registers"] - before["local_forward_registers"] == register_runs
    assert after["local_backward_registers"] - before["local_backward_registers"] == register_runs
    assert after["cluster_forward"] - before["cluster_forward"] == cluster_runs
    assert after["cluster_backward"] - before["cluster_backward"] == cluster_runs

    names = ["output", "h_n", "grad_x", "grad_hx"] + [n for n, _ in ours.named_parameters()]
    for name, a, b in zip(names, got, expected):
        assert torch.isfinite(a).all(), f"{name}: not finite (an element never written?)"
        if dtype in (torch.float16, torch.bfloat16):
            assert rel_err(a, b) < 2e-2, f"{name}: rel err {rel_err(a, b):.2e}"
        else:
            assert_close(a, b.to(dtype), dtype, name)


def test_h200_and_h100_plans_take_the_whole_matrix():
    """On this card every case above is eligible, so the persistent runs are asserted."""
    props = torch.cuda.get_device_properties(0)
    if props.major != 9:
        pytest.skip("the figures are for a Hopper card")
    for H, N, D, _, dtype in _cases():
        refusal = persistent_kernels.plan(H, N, D, dtype)["refusal"]
        assert refusal == ("dtype" if dtype == torch.float64 else "none"), (H, N, D, dtype)
