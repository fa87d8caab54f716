import contextlib

import pytest
import torch

import gru_cuda
from gru_cuda import graph_replay, persistent_kernels
from gru_cuda.precision import set_full_fp32_precision

# cuDNN's RNN runs float32 in TF32 by default (about 1e-3 relative error); the float32
# comparisons with nn.GRU below need it in full fp32, as our cuBLAS GEMMs are.
if torch.cuda.is_available():
    set_full_fp32_precision("cuda")

# On a GPU every device-generic test runs three times on CUDA: the per-step kernels; the
# persistent ones in require mode: a layer the plan takes either runs persistent or fails
# the test (layers the plan refuses, float64 say, run per step as before); and the
# per-step loop replayed from a graph captured at every call.
DEVICES = ["cpu"] + (["cuda", "cuda+persistent", "cuda+replay"] if torch.cuda.is_available()
                     else [])


@contextlib.contextmanager
def cuda_path(path):
    """The CUDA kernels a test runs on ("per-step", "persistent" or "replay"); afterwards,
    on the persistent path, that no layer the plan took fell back to the per-step kernels;
    on the replay path, that every loop that missed the cache was captured (none ran
    eagerly)."""
    persistent_before = persistent_kernels.counts()
    replay_before = graph_replay.counts()
    with gru_cuda.persistent("require" if path == "persistent" else False), \
            gru_cuda.replay("always" if path == "replay" else False):
        yield
    if path == "persistent":
        assert persistent_kernels.counts()["fallback"] == persistent_before["fallback"]
    if path == "replay":
        after = graph_replay.counts()
        assert after["misses"] - replay_before["misses"] == \
            after["captures"] - replay_before["captures"]


@pytest.fixture(params=DEVICES)
def device(request):
    name, _, path = request.param.partition("+")
    with cuda_path(path or "per-step"):
        yield name


def tolerances(dtype):
    """(rtol, atol) for comparing two correct GRU implementations."""
    if dtype == torch.float64:
        return 1e-7, 1e-10
    return 1e-4, 1e-5


def assert_close(actual, expected, dtype, what=""):
    rtol, atol = tolerances(dtype)
    if dtype != torch.float64 and expected.numel():
        # Rounding grows with the size of the terms summed (a weight gradient sums over
        # every step), not with the element compared: scale atol by the largest.
        atol *= max(1.0, expected.detach().abs().max().item())
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol, msg=lambda m: f"{what}: {m}")


def rel_err(a, b):
    """||a - b|| / ||b|| in float64."""
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def fwd_bwd(model, x, hx):
    """Output, h_n and the gradients of x, hx and every parameter of a fixed loss."""
    out, h_n = model(x, hx)
    loss = (out.float() * torch.linspace(-1, 1, out.shape[-1], device=x.device)).sum() + \
        h_n.float().sum()
    grads = torch.autograd.grad(loss, [x, hx] + list(model.parameters()))
    return [out, h_n, *grads]
