"""What the build produced: CUDA kernels are registered whenever a CUDA toolkit was
found at build time (CI builds with nvcc, so every CI run checks the .cu files link)."""
import os
import shutil
import subprocess
import sys

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


def test_build_records_the_torch_it_was_built_against():
    assert _build_info.TORCH_VERSION == torch.__version__
    assert gru_cuda._torch_mismatch() == ""


def test_a_torch_mismatch_names_both_versions(monkeypatch):
    monkeypatch.setattr(_build_info, "TORCH_VERSION", "2.0.0+other")
    message = gru_cuda._torch_mismatch()
    assert "built for torch 2.0.0+other" in message
    assert f"torch {torch.__version__} is loaded" in message


def test_setup_without_torch_stops_and_names_the_fix():
    """What `pip install .` meets in pip's isolated build env, which holds no torch (so
    that it cannot build against a torch other than the environment's)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    hide_torch = ("import sys; sys.modules['torch'] = None; sys.argv = ['setup.py', '--name'];"
                  "exec(compile(open('setup.py').read(), 'setup.py', 'exec'))")
    done = subprocess.run([sys.executable, "-c", hide_torch], cwd=root, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert "pip install --no-build-isolation ." in done.stderr
    assert "torch is needed to build" in done.stderr
