"""Fused GRU kernels for PyTorch: drop-in replacements for torch.nn.GRU and GRUCell."""
import torch

try:
    from . import _C  # noqa: F401  (loading it registers the gru_cuda ops)
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "gru_cuda's compiled extension (gru_cuda._C) is missing or does not load: "
        f"{exc}. Build it from the repository root with "
        "`pip install --no-build-isolation -e .` (or `python setup.py build_ext --inplace`)."
    ) from exc

from . import _ops, reference  # noqa: E402,F401
from .modules import GRU, GRUCell  # noqa: E402
from .persistent_kernels import persistent, set_persistent  # noqa: E402


def has_cuda_kernels() -> bool:
    """Whether the loaded extension registered CUDA kernels for the ops."""
    return torch._C._dispatch_has_kernel_for_dispatch_key("gru_cuda::gru_layer", "CUDA")


__all__ = ["GRU", "GRUCell", "has_cuda_kernels", "persistent", "reference", "set_persistent"]
