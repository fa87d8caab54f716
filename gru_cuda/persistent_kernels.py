"""The persistent CUDA kernels: a layer's whole time loop in one launch, W_hh held on chip.

They are compiled, not yet run on a GPU, so they are opt-in: nothing uses them unless
GRU_CUDA_PERSISTENT=1 is set or this switch is turned on. When on, an eligible layer
(CUDA, float32/float16/bfloat16, H <= 1024, N <= 128, W_hh fitting the SMs' shared
memory) runs persistent; any other layer, or a refused launch, runs the per-step path.

    with gru_cuda.persistent():
        out, h_n = model(x)
"""
import contextlib

import torch

from . import _C

REFUSALS = tuple(_C.PERSISTENT_REFUSALS.split(","))  # the plan's reasons, "none" first
PLAN_FIELDS = ("refusal", "blocks_per_direction", "units_per_block", "grid", "threads",
               "smem_forward", "smem_backward")


def set_persistent(enabled):
    """Switch the persistent kernels on or off for the process; returns the previous state."""
    return bool(torch.ops.gru_cuda.set_persistent_mode(int(bool(enabled))))


@contextlib.contextmanager
def persistent(enabled=True):
    """The persistent kernels on (or off) inside the block, as they were after it."""
    previous = set_persistent(enabled)
    try:
        yield
    finally:
        set_persistent(previous)


def counts():
    """Layers run persistent (forward, backward) and fallbacks to the per-step path."""
    forward, backward, fallback = torch.ops.gru_cuda.persistent_counts()
    return {"forward": forward, "backward": backward, "fallback": fallback}


def plan(hidden_size, batch, directions=1, dtype=torch.float32, sm_count=None,
         smem_per_block=None, device=None):
    """The launch plan for a layer: the current CUDA device's figures unless given."""
    if sm_count is None or smem_per_block is None:
        props = torch.cuda.get_device_properties(device)
        sm_count = props.multi_processor_count if sm_count is None else sm_count
        if smem_per_block is None:
            smem_per_block = props.shared_memory_per_block_optin
    values = torch.ops.gru_cuda.persistent_plan(hidden_size, batch, directions,
                                                dtype == torch.float64, sm_count, smem_per_block)
    result = dict(zip(PLAN_FIELDS, values))
    result["refusal"] = REFUSALS[result["refusal"]]
    return result
