"""The persistent CUDA kernels: a layer's whole time loop in one launch, W_hh held on chip.

By default (auto mode) they run only where a GPU run measured them correct and faster than
the per-step path, in the form and variant measured fastest there: a table in the code
(csrc/persistent/persistent_defaults.h; `measured_default` reads it), empty until the
kernels have run on a GPU, so that today nothing runs them unless GRU_CUDA_PERSISTENT=1 is
set or this switch is turned on (GRU_CUDA_PERSISTENT=0, or False: never). When on, an
eligible layer (CUDA, float32/float16/bfloat16, W_hh fitting one block's shared memory
with N up to 4 waves of blocks, or else H <= 1024, N <= 128 and W_hh fitting the SMs'
shared memory; under a user's CUDA graph capture, only the local and cluster forms with
padded input) runs persistent; any other layer runs the per-step path, as does one whose
cooperative launch the device refuses. In require mode (GRU_CUDA_PERSISTENT=require, or
persistent("require")) that refused launch is an error instead, so that a test or a
benchmark knows which kernels it ran; any other CUDA error is raised in every mode.

Two forms: where one block's shared memory holds all of W_hh (H up to about 137 on a
Hopper card) the local form runs, each block taking a few batch rows alone, with no grid
barrier; else the grid form, blocks owning hidden units, one grid barrier per step.
GRU_CUDA_PERSISTENT_LOCAL=0 or set_local_form(False) keeps to the grid form. The local
form keeps W_hh in shared memory, or with GRU_CUDA_PERSISTENT_REGISTERS=1 (or
set_registers(True)) a thread's part of it in registers where they hold it. With
GRU_CUDA_PERSISTENT_CLUSTER=1 (or set_cluster(True)) a third form runs where the local
one does not, on Hopper cards, up to H=512: thread-block clusters of 8 or 16 blocks,
each cluster taking some batch rows alone, its blocks exchanging the state through each
other's shared memory with a cluster barrier per step.

    with gru_cuda.persistent():
        out, h_n = model(x)
"""
import torch

from . import _C, precision
from ._switches import mode_within, set_mode

REFUSALS = tuple(_C.PERSISTENT_REFUSALS.split(","))  # the plan's reasons, "none" first
PLAN_FIELDS = tuple(_C.PERSISTENT_PLAN_FIELDS.split(","))
FORMS = tuple(_C.PERSISTENT_FORMS.split(","))
COUNTS = tuple(_C.PERSISTENT_COUNTS.split(","))
_MODES = (False, True, "require", "auto")  # the C++ switch's values, in order


def set_persistent(enabled):
    """Switch the persistent kernels on (True), off (False), on in require mode
    ("require") or where measured faster ("auto", the default) for the process; returns
    the previous setting."""
    return set_mode(torch.ops.gru_cuda.set_persistent_mode, _MODES, "persistent", enabled)


def persistent(enabled=True):
    """The persistent kernels on (True, or "require"), off, or "auto" inside the block, as
    they were after it."""
    return mode_within(set_persistent, enabled)


def set_local_form(allowed):
    """Let the plan choose the local form where it fits (True), or keep every layer on the
    grid form (False); returns the previous setting."""
    return torch.ops.gru_cuda.set_persistent_local(bool(allowed))


def set_warp_rows(rows):
    """The batch rows a warp's forward product takes in the grid form: 1, 2 or 4 (fewer
    where H's form holds fewer: 2 up to H=512, 1 above); returns the previous setting."""
    return torch.ops.gru_cuda.set_persistent_warp_rows(rows)


def _current(setter, probe):
    """A setter's value now (each returns the previous one): set probe, then set it back."""
    value = setter(probe)
    setter(value)
    return value


def warp_rows():
    """The grid form's rows a warp now (GRU_CUDA_PERSISTENT_ROWS, else 1)."""
    return _current(set_warp_rows, 1)


def set_mma(allowed):
    """Let the grid and cluster forms' products (forward and backward) run on tensor cores
    where H % 16 == 0 (True): for float16 and bfloat16, and for float32 in TF32 where
    cuDNN's RNN setting allows TF32 (as nn.GRU then computes). Or keep FFMA (False, the
    default until a GPU run has checked it; GRU_CUDA_PERSISTENT_MMA=1 at start). Returns
    the previous setting."""
    return torch.ops.gru_cuda.set_persistent_mma(bool(allowed))


def mma_allowed():
    """Whether the grid and cluster forms may use tensor cores now."""
    return _current(set_mma, False)


def set_registers(allowed):
    """Let the local form keep each thread's part of W_hh in registers (True: the
    forward's gate row, the backward's gate-block column) where they hold it: H up to 64,
    or up to 128 with at most 2 batch rows a block. Or keep W_hh in shared memory (False,
    the default until a GPU run has measured the two; GRU_CUDA_PERSISTENT_REGISTERS=1 at
    start). Returns the previous setting."""
    return torch.ops.gru_cuda.set_persistent_registers(bool(allowed))


def registers_allowed():
    """Whether the local form may keep W_hh in registers now."""
    return _current(set_registers, False)


def set_cluster(allowed):
    """Let the plan choose the cluster form where the local one does not run and the
    device has clusters (sm_90 on; H up to 512, its slices fitting shared memory) (True),
    or not (False, the default until a GPU run has checked it;
    GRU_CUDA_PERSISTENT_CLUSTER=1 at start). Returns the previous setting."""
    return torch.ops.gru_cuda.set_persistent_cluster(bool(allowed))


def cluster_allowed():
    """Whether the plan may choose the cluster form now."""
    return _current(set_cluster, False)


def set_cluster_size(size):
    """The smallest cluster the cluster form takes: 8 (16 only where a slice of 8 does not
    fit; the default) or 16 (half the work a block, a barrier over twice the blocks);
    GRU_CUDA_PERSISTENT_CLUSTER_SIZE at start. Returns the previous setting."""
    return torch.ops.gru_cuda.set_persistent_cluster_size(size)


def cluster_size():
    """The cluster form's smallest cluster now."""
    return _current(set_cluster_size, 8)


def local_form_allowed():
    """Whether the plan may choose the local form now."""
    return _current(set_local_form, True)


def measured_default(hidden_size, batch, directions=1, dtype=torch.float32):
    """What auto mode runs for such a layer: None (the per-step path), or the form and
    variant a GPU run measured fastest there (form, rows_per_warp, mma, registers,
    cluster_size)."""
    values = torch.ops.gru_cuda.persistent_default(dtype, hidden_size, batch, directions)
    if not values:
        return None
    choice = dict(zip(("form", "rows_per_warp", "mma", "registers", "cluster_size"), values))
    choice["form"] = FORMS[choice["form"]]
    choice["mma"], choice["registers"] = bool(choice["mma"]), bool(choice["registers"])
    return choice


def counts():
    """Since the process started: layers run persistent (forward, backward; local_forward
    and local_backward: of those, by the local form; grid_forward_rows_R: the grid form's
    forwards whose warps took R rows; grid_forward_mma, grid_backward_mma: the grid form's
    passes on tensor cores; local_forward_registers, local_backward_registers: the local
    form's passes with W_hh in registers; cluster_forward, cluster_backward: the cluster
    form's passes, cluster_forward_mma, cluster_backward_mma: of those, on tensor cores,
    cluster_backward_lane_units_2: its FFMA backwards with 2 units a lane),
    layers the switch offered them that they did not take (refused: the plan's reasons or
    graph capture), and layers whose launch the device refused (fallback: run per
    step)."""
    return dict(zip(COUNTS, torch.ops.gru_cuda.persistent_counts(), strict=True))


def _mma_bytes(dtype, mma, ptx_version=None):
    """The element size the plan's tensor cores would take, as the CUDA runner decides it:
    the half types, and float32 as TF32 where cuDNN's RNNs may use TF32; else 0, and where
    the device runs kernels built for an architecture before sm_80 (ptx_version)."""
    if not (mma_allowed() if mma is None else mma) or (ptx_version or 80) < 80:
        return 0
    if dtype in (torch.float16, torch.bfloat16):
        return 2
    return 4 if dtype == torch.float32 and precision.cudnn_rnn_allows_tf32() else 0


def plan(hidden_size, batch, directions=1, dtype=torch.float32, sm_count=None,
         smem_per_block=None, device=None, local=True, rows_per_warp=None, mma=None,
         registers=None, cluster=None, clusters=None):
    """The launch plan for a layer: the CUDA device's figures unless given (then its
    clusters of 8 and 16 blocks at once unless `clusters` gives them: one cluster an 8 or
    16 SMs); the local form only where `local` allows it; the grid form's rows a warp and
    its tensor cores, the local forward's W_hh in registers, and the cluster form, as
    wanted (the current settings unless given)."""
    ptx_version = None  # the device's kernels' virtual architecture, where it is asked
    if sm_count is None or smem_per_block is None:
        index = None if device is None else torch.device(device).index
        figures = torch.ops.gru_cuda.persistent_device_limits(
            torch.cuda.current_device() if index is None else index)
        sm_count = figures[0] if sm_count is None else sm_count
        smem_per_block = figures[1] if smem_per_block is None else smem_per_block
        clusters = tuple(figures[2:4]) if clusters is None else clusters
        ptx_version = figures[4]
    if clusters is None:
        clusters = (sm_count // 8, sm_count // 16)
    if not (cluster_allowed() if cluster is None else cluster):
        clusters = (0, 0)
    elif cluster_size() == 16:
        clusters = (0, clusters[1])
    values = torch.ops.gru_cuda.persistent_plan(hidden_size, batch, directions,
                                                dtype == torch.float64, sm_count, smem_per_block,
                                                local, rows_per_warp or warp_rows(),
                                                _mma_bytes(dtype, mma, ptx_version),
                                                registers_allowed() if registers is None
                                                else registers, *clusters, dtype.itemsize)
    result = dict(zip(PLAN_FIELDS, values))
    result["refusal"] = REFUSALS[result["refusal"]]
    result["form"] = FORMS[result["form"]]
    return result
