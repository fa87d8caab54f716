"""The problems and the contenders of the GRU benchmark.

A Problem holds one size and dtype: inputs, the gradients fed to the backward, the
nn.GRU whose weights every contender copies, and the "truth" (nn.GRU in float32 on the
same, possibly rounded, inputs and weights) that the parity check compares against.
A contender is built from a Problem by a builder function; the registry maps names to
builders so that a test (or a new experiment) can inject its own.
"""
import contextlib
import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch._dynamo
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence

import gru_cuda
from gru_cuda import direct_blas, graph_replay, persistent_kernels, precision
from gru_cuda._switches import mode_within
from gru_cuda.reference import GRUReference, load_nn_gru_weights

BASELINE = "nn.GRU"
BASELINE_TF32 = "nn.GRU TF32"  # cuDNN's default for float32; BASELINE runs full fp32
BASELINE_GRAPHED = "nn.GRU graphed"  # replayed from a CUDA graph: cuDNN without host cost
PERSISTENT = "persistent"  # gru_cuda with its persistent CUDA kernels (opt-in)
PERSISTENT_MMA = "persistent mma"  # the same, the grid form on tensor cores (float32: TF32)
PERSISTENT_CLUSTER = "persistent cluster"  # the same, in thread-block clusters (Hopper)
PERSISTENT_CLUSTER_16 = "persistent cluster 16"  # the same, clusters of 16 only
PERSISTENT_CLUSTER_MMA = "persistent cluster mma"  # the cluster form on tensor cores
REPLAYED = "replayed"  # gru_cuda's per-step path replayed from its own graphs (opt-in)
DIRECT = "direct GEMMs"  # gru_cuda's per-step path, its GEMMs on cuBLAS directly (opt-in)
DIRECT_TF32 = "direct GEMMs TF32"  # the same in TF32, as cuDNN's default
COMPILED = "compiled reference"
AUTO = "auto"  # gru_cuda as it runs by default: each path where a GPU run measured it faster


class Unavailable(Exception):
    """A contender that cannot run here (e.g. torch.compile missing): skipped, not refused."""


@dataclass(frozen=True)
class Size:
    T: int
    N: int
    I: int  # noqa: E741  (the usual name of the input size)
    H: int
    layers: int = 1
    bidirectional: bool = False
    packed: bool = False  # a PackedSequence, lengths uniform in [T/4, T], unsorted

    @property
    def directions(self):
        return 2 if self.bidirectional else 1

    def variant(self):
        """'' for one layer, one direction, padded; else e.g. 'L=2 bidir packed'."""
        parts = ([f"L={self.layers}"] if self.layers > 1 else []) + \
            (["bidir"] if self.bidirectional else []) + (["packed"] if self.packed else [])
        return " ".join(parts)

    def label(self):
        return f"T={self.T} N={self.N} I={self.I} H={self.H}" + \
            (f" {self.variant()}" if self.variant() else "")


@dataclass
class Problem:
    size: Size
    device: torch.device
    dtype: torch.dtype
    x: torch.Tensor          # (T, N, I), padded
    h0: torch.Tensor         # (layers * directions, N, H)
    grad_out: torch.Tensor   # fixed random projection of the output ...
    grad_h: torch.Tensor     # ... and of h_n: the backward starts from these
    source: torch.nn.GRU     # weights every contender copies, in `dtype`
    lengths: torch.Tensor = None  # per row, when packed
    truth: dict = field(default_factory=dict)  # output, h_n, grad_input (float32)

    @property
    def tokens(self):
        return int(self.lengths.sum()) if self.lengths is not None else self.size.T * self.size.N

    def inputs(self, x=None):
        """(leaf, input): the tensor the input gradient is taken of, and what a GRU is fed
        (the same tensor, or a PackedSequence around it)."""
        x = self.x if x is None else x
        if self.lengths is None:
            leaf = x.detach().clone().requires_grad_(True)
            return leaf, leaf
        packed = pack_padded_sequence(x, self.lengths, enforce_sorted=False)
        leaf = packed.data.detach().clone().requires_grad_(True)
        return leaf, PackedSequence(leaf, packed.batch_sizes, packed.sorted_indices,
                                    packed.unsorted_indices)


@dataclass
class Contender:
    fn: Callable             # fn(input, h0) -> (output, h_n), as nn.GRU's forward
    params: list             # the weights the backward differentiates
    tolerance: float = None  # parity tolerance when looser than the dtype's (TF32)
    context: Callable = None  # context(pass) -> a context manager around forward and backward
    graphed: bool = False    # captured in a CUDA graph once, then replayed
    path: dict = None        # which of gru_cuda's paths and variant it runs (recorded)


def make_problem(size, device, dtype, seed=0):
    """Random inputs and weights, drawn in float32 on the CPU (the same on every machine)
    and then cast; the truth uses the cast values, so rounding is not counted as error."""
    torch.manual_seed(seed)
    gru = torch.nn.GRU(size.I, size.H, num_layers=size.layers, bidirectional=size.bidirectional)
    x = torch.randn(size.T, size.N, size.I)
    h0 = torch.randn(size.layers * size.directions, size.N, size.H)
    lengths = None
    if size.packed:
        lengths = torch.randint(max(1, size.T // 4), size.T + 1, (size.N,))
        lengths[torch.randint(size.N, ())] = size.T
    rows = int(lengths.sum()) if lengths is not None else None
    out_shape = (rows, size.directions * size.H) if size.packed else \
        (size.T, size.N, size.directions * size.H)
    grad_out, grad_h = torch.randn(out_shape), torch.randn(h0.shape)
    cast = {"device": device, "dtype": dtype}
    problem = Problem(size, torch.device(device), dtype, x.to(**cast), h0.to(**cast),
                      grad_out.to(**cast), grad_h.to(**cast), gru.to(**cast), lengths)
    problem.truth = _truth(problem)
    return problem


def output_data(output):
    """A GRU's output as a tensor (a PackedSequence's data)."""
    return output.data if isinstance(output, PackedSequence) else output


def _truth(problem):
    gru = copy.deepcopy(problem.source).float()
    leaf, inp = problem.inputs(problem.x.float())
    out, h_n = gru(inp, problem.h0.float())
    out = output_data(out)
    (grad_x,) = torch.autograd.grad((out, h_n), [leaf],
                                    (problem.grad_out.float(), problem.grad_h.float()))
    return {"output": out.detach(), "h_n": h_n.detach(), "grad_input": grad_x}


def _like_source(module, problem):
    return module.to(device=problem.device, dtype=problem.dtype)


def build_fused(problem):
    """gru_cuda.GRU on the per-step path, eager (the persistent kernels and replay off)."""
    s = problem.size
    gru = _like_source(gru_cuda.GRU(s.I, s.H, num_layers=s.layers,
                                    bidirectional=s.bidirectional), problem)
    gru.load_state_dict(problem.source.state_dict())
    return Contender(gru, list(gru.parameters()),
                     context=lambda _pass: _all(gru_cuda.persistent(False),
                                                gru_cuda.replay(False)))


def build_auto(problem):
    """gru_cuda.GRU with the switches at their default (auto): the persistent kernels and
    graph replay where a GPU run measured them faster, the per-step path elsewhere."""
    fused = build_fused(problem)
    return Contender(fused.fn, fused.params,
                     context=lambda _pass: _all(gru_cuda.persistent("auto"),
                                                gru_cuda.replay("auto")))


def _proven_once(fused, counts, switches, proven_by, **contender):
    """fused's call run under switches(); the first call of each pass (the parity check's)
    must then satisfy proven_by(pass_name, counts before, counts after), or it raises: a
    fast path that silently fell back would be timed under the wrong name."""
    proven = set()

    @contextlib.contextmanager
    def context(pass_name):
        before = counts()
        with switches():
            yield
        if pass_name not in proven:
            after = counts()
            if not proven_by(pass_name, before, after):
                raise RuntimeError(f"the path did not run as named: {after} after {before}")
            proven.add(pass_name)
    return Contender(fused.fn, fused.params, context=context, **contender)


def build_persistent(problem, mma=False, cluster=0):
    """gru_cuda.GRU on its persistent kernels, forward and backward, in require mode (a
    refused launch raises), in the form the plan chose (checked by the counts); refused
    where the plan would not take the layer. With mma, tensor cores (the grid and cluster
    forms' passes: float16 and bfloat16, float32 as TF32 with cuDNN's RNNs in TF32 too,
    as nn.GRU TF32 runs), unavailable where the plan would not use them; with cluster
    (the smallest cluster: 8 or 16), the cluster form, unavailable where the plan would
    not choose it."""
    if problem.device.type != "cuda":
        raise Unavailable("the persistent kernels are CUDA kernels")
    s = problem.size
    size = cluster or 8
    tf32 = mma and problem.dtype == torch.float32
    with mode_within(persistent_kernels.set_cluster_size, size), \
            precision.cudnn_rnn_tf32(True) if tf32 else contextlib.nullcontext():
        plan = persistent_kernels.plan(s.H, s.N, s.directions, problem.dtype,
                                       local=persistent_kernels.local_form_allowed(), mma=mma,
                                       cluster=bool(cluster))
    if plan["refusal"] != "none":
        raise Unavailable(f"not eligible for the persistent kernels: {plan['refusal']}")
    if mma and not plan["mma"]:
        raise Unavailable("no tensor cores here (the local form, H % 16 != 0, or their "
                          "tiles do not fit)")
    if cluster and plan["form"] != "cluster":
        raise Unavailable(f"the plan runs the {plan['form']} form here (clusters: Hopper, H <= 512)")
    passes = ("forward", "backward")
    if plan["form"] == "cluster":
        passes += ("cluster_forward", "cluster_backward")
        if plan["mma"]:
            passes += ("cluster_forward_mma", "cluster_backward_mma")
    elif plan["form"] == "local":  # and in the form (and variant) the plan chose
        passes += ("local_forward", "local_backward")
        if plan["register_chunks"]:
            passes += ("local_forward_registers", "local_backward_registers")
    elif plan["mma"]:
        passes += ("grid_forward_mma", "grid_backward_mma")
    else:
        passes += (f"grid_forward_rows_{plan['rows_per_warp']}",)

    def switches():
        return _all(mode_within(persistent_kernels.set_mma, mma),
                    mode_within(persistent_kernels.set_cluster, bool(cluster)),
                    mode_within(persistent_kernels.set_cluster_size, size),
                    gru_cuda.persistent("require"), gru_cuda.replay(False),
                    precision.cudnn_rnn_tf32(True) if tf32 else contextlib.nullcontext())

    def ran_all(pass_name, before, after):
        ran = {k: (after[k] - before[k]) // s.layers for k in passes}
        return all(ran[k] >= 1 for k in passes if pass_name == "fwd+bwd" or "backward" not in k)
    path = {"persistent": plan["form"], "rows_per_warp": plan["rows_per_warp"],
            "mma": bool(plan["mma"]), "registers": bool(plan["register_chunks"]),
            "cluster_size": plan["cluster_size"]}
    return _proven_once(build_fused(problem), persistent_kernels.counts, switches, ran_all,
                        path=path, tolerance=2e-2 if tf32 else None)


def build_persistent_mma(problem):
    return build_persistent(problem, mma=True)


def build_persistent_cluster(problem):
    return build_persistent(problem, cluster=8)


def build_persistent_cluster_16(problem):
    return build_persistent(problem, cluster=16)


def build_persistent_cluster_mma(problem):
    return build_persistent(problem, mma=True, cluster=8)


def build_replayed(problem):
    """gru_cuda.GRU on the per-step path with its loops replayed from captured graphs,
    forward and backward (captured at the first call, the parity check's); the persistent
    kernels off. Each pass proves once that its loops replayed and none ran eagerly."""
    if problem.device.type != "cuda":
        raise Unavailable("graph replay is a CUDA path")
    s = problem.size

    def replayed(pass_name, before, after):
        ran = {k: after[k] - before[k] for k in ("hits", "misses", "captures")}
        loops = s.layers * (2 if pass_name == "fwd+bwd" else 1)
        return ran["misses"] == ran["captures"] and ran["hits"] + ran["captures"] >= loops
    return _proven_once(
        build_fused(problem), graph_replay.counts,
        lambda: _all(gru_cuda.replay("always"), gru_cuda.persistent(False)), replayed,
        path={"replay": True})


def build_direct(problem, tf32=False):
    """gru_cuda.GRU on the per-step path (persistent kernels off) with its GEMMs called on
    cuBLAS directly. float32 follows cuDNN's RNN setting there: full fp32 as the baseline
    runs, or with tf32 TF32 as nn.GRU TF32 runs. Each pass proves once that its GEMMs ran
    directly and none was declined."""
    if problem.device.type != "cuda":
        raise Unavailable("the direct GEMMs are cuBLAS's")
    if tf32 and problem.dtype != torch.float32:
        raise Unavailable("TF32 applies to float32 only")

    def direct(pass_name, before, after):
        return after["gemms"] > before["gemms"] and after["declined"] == before["declined"]
    return _proven_once(
        build_fused(problem), direct_blas.counts,
        lambda: _all(gru_cuda.direct_gemm(), gru_cuda.persistent(False), gru_cuda.replay(False),
                     precision.cudnn_rnn_tf32(tf32)),
        direct, tolerance=2e-2 if tf32 else None)


def build_direct_tf32(problem):
    return build_direct(problem, tf32=True)


@contextlib.contextmanager
def _all(*contexts):
    """The contexts entered in order, as one."""
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        yield


def build_nn(problem):
    gru = problem.source
    return Contender(gru, list(gru.parameters()))


def build_nn_tf32(problem):
    """nn.GRU as cuDNN runs float32 by default: its GEMMs in TF32 (10-bit mantissa)."""
    if problem.device.type != "cuda" or problem.dtype != torch.float32:
        raise Unavailable("TF32 applies to float32 on CUDA only")
    gru = problem.source

    def fn(x, h0):
        with precision.cudnn_rnn_tf32(True):
            return gru(x, h0)
    return Contender(fn, list(gru.parameters()), tolerance=2e-2)


def build_nn_graphed(problem):
    """nn.GRU replayed from a CUDA graph, forward and backward: cuDNN at its best, as a
    user with static shapes can have it (torch.cuda.CUDAGraph)."""
    if problem.device.type != "cuda":
        raise Unavailable("CUDA graphs need CUDA")
    gru = problem.source
    return Contender(gru, list(gru.parameters()), graphed=True)


def _reference_module(problem):
    s = problem.size
    if s.variant():
        raise Unavailable("the reference loop is one layer, one direction, padded input")
    ref = _like_source(GRUReference(s.I, s.H), problem)
    return load_nn_gru_weights(ref, problem.source)


def _batched_h(ref):
    """The reference takes and returns h as (N, H); nn.GRU as (1, N, H)."""
    def fn(x, h0):
        out, h_n = ref(x, h0[0])
        return out, h_n.unsqueeze(0)
    return fn


def build_reference(problem):
    ref = _reference_module(problem)
    return Contender(_batched_h(ref), list(ref.parameters()))


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
    ref = _reference_module(problem)
    torch._dynamo.reset()
    compiled = torch.compile(ref)
    return Contender(_batched_h(compiled), list(ref.parameters()))


def default_registry():
    """Name -> builder, in the order contenders are run and reported."""
    return {"fused": build_fused, AUTO: build_auto, PERSISTENT: build_persistent,
            PERSISTENT_MMA: build_persistent_mma, PERSISTENT_CLUSTER: build_persistent_cluster,
            PERSISTENT_CLUSTER_16: build_persistent_cluster_16,
            PERSISTENT_CLUSTER_MMA: build_persistent_cluster_mma,
            REPLAYED: build_replayed,
            DIRECT: build_direct, DIRECT_TF32: build_direct_tf32,
            BASELINE: build_nn, BASELINE_TF32: build_nn_tf32,
            BASELINE_GRAPHED: build_nn_graphed, "reference": build_reference,
            COMPILED: build_compiled}
