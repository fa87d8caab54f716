"""Graph replay of the CUDA per-step path: a layer's time loop captured once per shape
into a CUDA graph and replayed afterwards, so that T steps cost one graph launch of host
time instead of T steps of launches and dispatches.

By default (auto mode) it runs only where a GPU run measured it correct and faster than
eager steps: a table in the code (csrc/replay/replay_defaults.h; `measured_default` reads
it), empty until replay has run on a GPU, so that today nothing replays unless
GRU_CUDA_REPLAY=1 is set or this switch is turned on (GRU_CUDA_REPLAY=0, or False: never).
When on, a layer that runs the per-step CUDA path (not the persistent kernels) runs its
first call of a shape eagerly and captures at the second; later calls of that shape
(sizes, packed batch sizes, dtype, stream, W_hh's storage, precision settings) replay.
"always" captures at the first call (tests). Under a caller's own graph capture the layer
runs eagerly, its launches joining that graph. The cache holds at most 16 graphs (least
recently used out) and a layer stops capturing after 8 shapes of its forward and 8 of its
backward (not in "always" mode).
Under float32 matmul precision settings that mix PyTorch's legacy and new APIs, float32
layers run eagerly.
CPU layers have nothing to replay: under the switch they run the same loop through the
offsets and addresses the graphs read, with the same results.

    with gru_cuda.replay():
        out, h_n = model(x)
"""
import torch

from ._switches import mode_within, set_mode

_MODES = (False, True, "always", "auto")  # the C++ switch's values, in order
_COUNTS = ("hits", "misses", "captures", "evictions", "capped", "failed", "entries", "bytes",
           "cpu_runs", "retired")


def set_replay(enabled):
    """Switch graph replay on (True), off (False), on from the first call ("always") or on
    where measured faster ("auto", the default) for the process; returns the previous
    setting."""
    return set_mode(torch.ops.gru_cuda.set_replay_mode, _MODES, "replay", enabled)


def replay(enabled=True):
    """Graph replay on (True, or "always"), off, or "auto" inside the block, as it was
    after it."""
    return mode_within(set_replay, enabled)


def measured_default(hidden_size, batch, directions=1, dtype=torch.float32):
    """Whether auto mode replays such a layer's loops: a GPU run measured replay faster
    there."""
    return torch.ops.gru_cuda.replay_default(dtype, hidden_size, batch, directions)


def counts():
    """Since the process started: loops replayed (hits), loops whose shape had no graph
    (misses; captures of them captured one), graphs dropped to stay within the cache's
    limits (evictions), misses kept eager by a layer's capture limit (capped), captures
    that failed (their shapes run eagerly after; in "always" mode the error is raised).
    Then what the cache holds now (entries, bytes of their buffers), and the loops CPU
    layers ran under the switch through the addressing replayed graphs use (cpu_runs: the
    CPU has no graphs, so that CPU tests check that addressing), and evicted graphs kept
    until their last replay is done (retired)."""
    return dict(zip(_COUNTS, torch.ops.gru_cuda.replay_counts()))


def clear():
    """Drops every captured graph (waiting for their last replays)."""
    torch.ops.gru_cuda.clear_replay_cache()
