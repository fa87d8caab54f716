"""What the build produced: CUDA kernels are registered whenever a CUDA toolkit was
found at build time (CI builds with nvcc, so every CI run checks the .cu files link)."""
import os
import shutil

import pytest
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


def test_cuda_kernels_built_wherever_a_toolkit_is_present():
    """Where torch is a CUDA build and nvcc is found, the CUDA kernels must have been
    built (and so compiled in every CI run), unless the CPU-only build was asked for."""
    if os.environ.get("GRU_CUDA_FORCE_CPU") == "1":
        pytest.skip("GRU_CUDA_FORCE_CPU=1: a CPU-only build was asked for")
    if torch.version.cuda is None or shutil.which("nvcc") is None:
        pytest.skip("no CUDA toolkit here")
    assert gru_cuda.has_cuda_kernels(), (
        "nvcc is on PATH and torch is a CUDA build, but the CUDA kernels were not built: "
        f"{_build_info.CUDA_SKIPPED_BECAUSE}")
