"""Fused GRU kernels for PyTorch: drop-in replacements for torch.nn.GRU and GRUCell."""
import warnings

import torch


def _torch_mismatch():
    """A sentence naming the torch the extension was built for and the one loaded, when
    they differ (a C++ extension loads only beside the torch it was built against)."""
    try:
        from ._build_info import TORCH_VERSION
    except ImportError:  # built before the version was recorded, or never built
        return ""
    if TORCH_VERSION == torch.__version__:
        return ""
    return (f"gru_cuda was built for torch {TORCH_VERSION} but torch {torch.__version__} is "
            "loaded; rebuild it against this torch. ")


try:
    from . import _C  # noqa: F401  (loading it registers the gru_cuda ops)
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        f"gru_cuda's compiled extension (gru_cuda._C) is missing or does not load: {exc}. "
        + _torch_mismatch()
        + "Build it from the repository root with `pip install --no-build-isolation .` "
        "(or `python setup.py build_ext --inplace`)."
    ) from exc
if _torch_mismatch():  # it loaded, but may misbehave: say so once
    warnings.warn(_torch_mismatch().strip(), RuntimeWarning, stacklevel=2)

from . import _ops, reference  # noqa: E402,F401
from .modules import GRU, GRUCell  # noqa: E402
from .direct_blas import direct_gemm, set_direct_gemm  # noqa: E402
from .graph_replay import replay, set_replay  # noqa: E402
from .persistent_kernels import persistent, set_persistent  # noqa: E402


def has_cuda_kernels() -> bool:
    """Whether the loaded extension registered CUDA kernels for the ops."""
    return torch._C._dispatch_has_kernel_for_dispatch_key("gru_cuda::gru_layer", "CUDA")


__all__ = ["GRU", "GRUCell", "direct_gemm", "has_cuda_kernels", "persistent", "reference",
           "replay", "set_direct_gemm", "set_persistent", "set_replay"]
