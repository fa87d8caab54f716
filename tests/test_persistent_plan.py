"""The persistent kernels' launch plan and switch, checked without a GPU: which block
owns which units, shared memory, grid size, eligibility (H100 and A100 figures)."""
import itertools
import os
import subprocess
import sys

import pytest
import torch

import gru_cuda
from gru_cuda import persistent_kernels

H100 = {"sm_count": 132, "smem_per_block": 232448}  # 227 KiB opt-in per block
A100 = {"sm_count": 108, "smem_per_block": 166912}  # 163 KiB


@pytest.mark.parametrize("H,N,D", list(itertools.product([1, 7, 128, 256, 512, 1024],
                                                         [1, 8, 32, 64], [1, 2])))
def test_h100_takes_every_layer_up_to_h1024_and_partitions_it(H, N, D):
    p = persistent_kernels.plan(H, N, D, **H100)
    assert p["refusal"] == "none"
    k, blocks = p["units_per_block"], p["blocks_per_direction"]
    assert (blocks - 1) * k < H <= blocks * k  # every unit owned once, no empty block
    assert p["grid"] == blocks * D <= H100["sm_count"]  # one block per SM: co-resident
    assert 4 * (3 * k * H + N * 3 * k) == p["smem_forward"] <= H100["smem_per_block"]
    assert 4 * k * 3 * H == p["smem_backward"] <= H100["smem_per_block"]
    assert p["threads"] == 256


def test_units_shrink_as_the_grid_grows():
    assert persistent_kernels.plan(512, 64, 1, **H100)["units_per_block"] == 4   # 128 blocks
    assert persistent_kernels.plan(512, 64, 2, **H100)["units_per_block"] == 8   # 64 per direction
    assert persistent_kernels.plan(1024, 64, 2, **H100)["units_per_block"] == 16


@pytest.mark.parametrize("H,N,D,dtype,figures,refusal", [
    (512, 64, 1, torch.float64, H100, "dtype"),
    (512, 129, 1, torch.float32, H100, "too_many_rows"),
    (2048, 8, 1, torch.float32, H100, "hidden_too_large"),
    (1024, 64, 2, torch.float32, A100, "no_shared_memory"),  # 19 units x 3H floats > 163 KiB
    (512, 0, 1, torch.float32, H100, "empty"),
])
def test_refusals(H, N, D, dtype, figures, refusal):
    assert persistent_kernels.plan(H, N, D, dtype, **figures)["refusal"] == refusal


def test_a100_takes_h1024_one_direction():
    p = persistent_kernels.plan(1024, 64, 1, **A100)
    assert p["refusal"] == "none" and p["units_per_block"] == 10 and p["grid"] == 103


def test_switch_is_off_by_default_and_restored():
    assert gru_cuda.set_persistent(False) is False  # opt-in: off unless asked for
    with gru_cuda.persistent():
        assert gru_cuda.set_persistent(True) is True
        with gru_cuda.persistent(False):
            assert gru_cuda.set_persistent(False) is False
        assert gru_cuda.set_persistent(True) is True
    assert gru_cuda.set_persistent(False) is False


def test_cpu_layers_ignore_the_switch():
    before = persistent_kernels.counts()
    torch.manual_seed(101)
    model = gru_cuda.GRU(3, 4)
    x = torch.randn(5, 2, 3)
    expected, _ = model(x)
    with gru_cuda.persistent():
        got, _ = model(x)
    assert torch.equal(got, expected) and persistent_kernels.counts() == before


def test_require_mode_is_a_third_setting_and_restored():
    with gru_cuda.persistent("require"):
        assert gru_cuda.set_persistent("require") == "require"
        with gru_cuda.persistent(True):
            assert gru_cuda.set_persistent(True) is True
        assert gru_cuda.set_persistent("require") == "require"
    assert gru_cuda.set_persistent(False) is False


def test_mode_must_be_off_on_or_require():
    with pytest.raises(ValueError, match="False, True, 'require', got 'always'"):
        gru_cuda.set_persistent("always")
    with pytest.raises(RuntimeError, match="must be 0 \\(off\\), 1 \\(on\\) or 2 \\(require\\)"):
        torch.ops.gru_cuda.set_persistent_mode(3)


@pytest.mark.parametrize("value,mode", [("1", True), ("on", True), ("require", "require"),
                                        ("0", False), ("", False)])
def test_environment_sets_the_starting_mode(value, mode):
    code = "import gru_cuda; print(repr(gru_cuda.set_persistent(False)))"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "GRU_CUDA_PERSISTENT": value}, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == repr(mode)


def test_plan_fields_come_from_cpp():
    assert persistent_kernels.PLAN_FIELDS[0] == "refusal"
    assert len(persistent_kernels.PLAN_FIELDS) == len(torch.ops.gru_cuda.persistent_plan(
        256, 8, 1, False, **H100))
