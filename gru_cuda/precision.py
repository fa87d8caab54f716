"""The float32 precision of nn.GRU's cuDNN RNNs: TF32 by default on Ampere and newer
(faster, about 1e-3 relative error), full fp32 ("ieee") when switched off. Comparing
gru_cuda with nn.GRU like for like needs the same setting on both sides: the tests and
the benchmark switch cuDNN's RNNs to full fp32, and time the TF32 default apart."""
import contextlib

import torch


def cudnn_rnn_allows_tf32():
    """Whether cuDNN's RNNs may use TF32 for float32 under the current settings."""
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):
        return rnn.fp32_precision == "tf32"
    return torch.backends.cudnn.allow_tf32  # older torch: one flag for every cuDNN op


def _set_cudnn_rnn_tf32(enabled):
    """Returns a function that restores the previous setting."""
    rnn = getattr(torch.backends.cudnn, "rnn", None)
    if rnn is not None and hasattr(rnn, "fp32_precision"):
        obj, attr, value = rnn, "fp32_precision", "tf32" if enabled else "ieee"
    else:
        obj, attr, value = torch.backends.cudnn, "allow_tf32", enabled
    previous = getattr(obj, attr)
    setattr(obj, attr, value)
    return lambda: setattr(obj, attr, previous)


def set_full_fp32_precision(device):
    """float32 means float32 for nn.GRU on `device` from here on (cuDNN's RNNs in IEEE
    fp32; nothing to change on the CPU)."""
    if torch.device(device).type == "cuda":
        _set_cudnn_rnn_tf32(False)


@contextlib.contextmanager
def cudnn_rnn_tf32(enabled):
    """TF32 in cuDNN's RNNs on or off inside the block, as it was after it."""
    restore = _set_cudnn_rnn_tf32(enabled)
    try:
        yield
    finally:
        restore()
