"""The problems and the contenders of the GRU benchmark.

A Problem holds one size and dtype: inputs, the gradients fed to the backward, the
nn.GRU whose weights every contender copies, and the "truth" (nn.GRU in float32 on the
same, possibly rounded, inputs and weights) that the parity check compares against.
A contender is built from a Problem by a builder function; the registry maps names to
builders so that a test (or a new experiment) can inject its own.
"""
import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch._dynamo

import gru_cuda
from benchmarks import report
from gru_cuda.reference import GRUReference, load_nn_gru_weights

BASELINE = "nn.GRU"
BASELINE_TF32 = "nn.GRU TF32"  # cuDNN's default for float32; BASELINE runs full fp32
COMPILED = "compiled reference"


class Unavailable(Exception):
    """A contender that cannot run here (e.g. torch.compile missing): skipped, not refused."""


@dataclass(frozen=True)
class Size:
    T: int
    N: int
    I: int  # noqa: E741  (the usual name of the input size)
    H: int

    @property
    def tokens(self):
        return self.T * self.N

    def label(self):
        return f"T={self.T} N={self.N} I={self.I} H={self.H}"


@dataclass
class Problem:
    size: Size
    device: torch.device
    dtype: torch.dtype
    x: torch.Tensor          # (T, N, I)
    h0: torch.Tensor         # (N, H)
    grad_out: torch.Tensor   # fixed random projection of the output ...
    grad_h: torch.Tensor     # ... and of h_n: the backward starts from these
    source: torch.nn.GRU     # weights every contender copies, in `dtype`
    truth: dict = field(default_factory=dict)  # output, h_n, grad_input (float32)


@dataclass
class Contender:
    fn: Callable             # fn(x (T,N,I), h0 (N,H)) -> (output (T,N,H), h_n (N,H))
    params: list             # the weights the backward differentiates
    tolerance: float = None  # parity tolerance when looser than the dtype's (TF32)


def make_problem(size, device, dtype, seed=0):
    """Random inputs and weights, drawn in float32 on the CPU (the same on every machine)
    and then cast; the truth uses the cast values, so rounding is not counted as error."""
    torch.manual_seed(seed)
    gru = torch.nn.GRU(size.I, size.H)
    x, h0 = torch.randn(size.T, size.N, size.I), torch.randn(size.N, size.H)
    grad_out, grad_h = torch.randn(size.T, size.N, size.H), torch.randn(size.N, size.H)
    cast = {"device": device, "dtype": dtype}
    problem = Problem(size, torch.device(device), dtype, x.to(**cast), h0.to(**cast),
                      grad_out.to(**cast), grad_h.to(**cast), gru.to(**cast))
    problem.truth = _truth(problem)
    return problem


def _truth(problem):
    gru = copy.deepcopy(problem.source).float()
    x = problem.x.float().requires_grad_(True)
    out, h_n = gru(x, problem.h0.float().unsqueeze(0))
    (grad_x,) = torch.autograd.grad((out, h_n[0]), [x],
                                    (problem.grad_out.float(), problem.grad_h.float()))
    return {"output": out.detach(), "h_n": h_n[0].detach(), "grad_input": grad_x}


def _like_source(module, problem):
    return module.to(device=problem.device, dtype=problem.dtype)


def build_fused(problem):
    s = problem.size
    gru = _like_source(gru_cuda.GRU(s.I, s.H), problem)
    gru.load_state_dict(problem.source.state_dict())
    return Contender(_batched_h(gru), list(gru.parameters()))


def build_nn(problem):
    gru = problem.source
    return Contender(_batched_h(gru), list(gru.parameters()))


def build_nn_tf32(problem):
    """nn.GRU as cuDNN runs float32 by default: its GEMMs in TF32 (10-bit mantissa)."""
    if problem.device.type != "cuda" or problem.dtype != torch.float32:
        raise Unavailable("TF32 applies to float32 on CUDA only")
    gru = problem.source
    inner = _batched_h(gru)

    def fn(x, h0):
        with report.cudnn_rnn_tf32(True):
            return inner(x, h0)
    return Contender(fn, list(gru.parameters()), tolerance=2e-2)


def _batched_h(gru):
    """nn.GRU-style modules take and return h as (layers, N, H)."""
    def fn(x, h0):
        out, h_n = gru(x, h0.unsqueeze(0))
        return out, h_n[0]
    return fn


def _reference_module(problem):
    s = problem.size
    ref = _like_source(GRUReference(s.I, s.H), problem)
    return load_nn_gru_weights(ref, problem.source)


def build_reference(problem):
    ref = _reference_module(problem)
    return Contender(ref, list(ref.parameters()))


def build_compiled(problem):
    """torch.compile of the reference loop. Compilation happens on the first call of each
    pass (no_grad and grad are compiled separately), i.e. in the parity check."""
    if not hasattr(torch, "compile"):
        raise Unavailable("torch.compile is missing in this torch")
    if not torch._dynamo.is_dynamo_supported():
        raise Unavailable("torch.compile is not supported on this Python/platform")
    # A fresh cache per problem: one code object (GRUReference.forward) is compiled for
    # every size and dtype, which would otherwise hit dynamo's recompile limit and
    # silently fall back to eager.
    torch._dynamo.reset()
    ref = _reference_module(problem)
    compiled = torch.compile(ref)
    return Contender(compiled, list(ref.parameters()))


def default_registry():
    """Name -> builder, in the order contenders are run and reported."""
    return {"fused": build_fused, BASELINE: build_nn, BASELINE_TF32: build_nn_tf32,
            "reference": build_reference, COMPILED: build_compiled}
