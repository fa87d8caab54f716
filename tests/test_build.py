"""What the build produced: CUDA kernels are registered whenever a CUDA toolkit was
found at build time (CI builds with nvcc, so every CI run checks the .cu files link)."""
import torch

import gru_cuda
from gru_cuda import _build_info


def test_cpu_kernels_registered():
    for name in ("gru_cuda::gru_layer", "gru_cuda::gru_layer_backward"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(name, "CPU")


def test_cuda_kernels_registered_when_built_with_cuda():
    assert gru_cuda.has_cuda_kernels() == _build_info.WITH_CUDA
    if _build_info.WITH_CUDA:
        assert torch._C._dispatch_has_kernel_for_dispatch_key("gru_cuda::gru_layer_backward", "CUDA")
    else:
        assert _build_info.CUDA_SKIPPED_BECAUSE
