"""The persistent kernels' launch plan and switch, checked without a GPU: which block
owns which units, shared memory, grid size, eligibility (H100 and A100 figures)."""
import itertools
import os
import subprocess
import sys

import pytest
import torch

import gru_cuda
from gru_cuda import persistent_kernels, precision

H100 = {"sm_count": 132, "smem_per_block": 232448}  # 227 KiB opt-in per block
A100 = {"sm_count": 108, "smem_per_block": 166912}  # 163 KiB


@pytest.mark.parametrize("H,N,D", list(itertools.product([1, 7, 128, 256, 512, 1024],
                                                         [1, 8, 32, 64], [1, 2])))
def test_h100_takes_every_layer_up_to_h1024_and_partitions_it(H, N, D):
    p = persistent_kernels.plan(H, N, D, **H100, local=False)
    assert p["refusal"] == "none" and p["form"] == "grid" and p["rows_per_block"] == N
    k, blocks = p["units_per_block"], p["blocks_per_direction"]
    assert (blocks - 1) * k < H <= blocks * k  # every unit owned once, no empty block
    assert p["grid"] == blocks * D <= H100["sm_count"]  # one block per SM: co-resident
    assert 4 * (3 * k * H + N * 3 * k) == p["smem_forward"] <= H100["smem_per_block"]
    assert 4 * k * 3 * H == p["smem_backward"] <= H100["smem_per_block"]
    assert p["threads"] == 256


@pytest.mark.parametrize("H,N,D,rows", [
    (1, 1, 1, 1), (37, 8, 2, 1), (128, 64, 2, 1), (128, 128, 1, 1), (128, 128, 2, 2),
    (137, 8, 1, 1)])
def test_h100_runs_small_h_locally(H, N, D, rows):
    p = persistent_kernels.plan(H, N, D, **H100)
    assert p["refusal"] == "none" and p["form"] == "local"
    assert p["rows_per_block"] == rows and p["units_per_block"] == H
    assert p["blocks_per_direction"] == -(-N // rows) and p["grid"] == D * -(-N // rows)
    assert p["grid"] <= H100["sm_count"]  # one wave
    assert p["threads"] == -(-3 * H // 32) * 32  # a thread per gate row
    w_stride = 3 * H + 1 - 3 * H % 2  # odd: a column's writes hit every bank
    assert 4 * (H * w_stride + rows * (3 * H + 3 * H + H) + 6 * H) == p["smem_forward"]
    w_block = H * H + (H - H * H) % 32  # a gate block's W_hh, padded to keep banks apart
    assert 4 * (3 * w_block + rows * (3 * H + H + 3 * H)) == p["smem_backward"]
    assert max(p["smem_forward"], p["smem_backward"]) <= H100["smem_per_block"]


@pytest.mark.parametrize("N,D,local", [(256, 1, True), (1000, 2, True), (2112, 2, True),
                                       (2113, 2, False), (4300, 1, False)])
def test_local_form_takes_any_batch_within_four_waves(N, D, local):
    p = persistent_kernels.plan(128, N, D, **H100)  # 8 rows a block: 4 waves hold 4224 rows
    assert p["form"] == ("local" if local else "grid")
    assert p["refusal"] == ("none" if local else "too_many_rows")
    if local:
        assert p["grid"] <= 4 * H100["sm_count"] and p["blocks_per_direction"] * p["rows_per_block"] >= N


def test_local_rows_shrink_to_fit_shared_memory_and_run_in_waves():
    p = persistent_kernels.plan(137, 128, 2, **H100)  # 2 rows a block would not fit
    assert p["form"] == "local" and p["rows_per_block"] == 1 and p["grid"] == 256


@pytest.mark.parametrize("H,figures", [(138, H100), (120, A100), (256, H100)])
def test_w_hh_past_one_block_takes_the_grid_form(H, figures):
    assert persistent_kernels.plan(H, 8, 1, **figures)["form"] == "grid"


def test_local_rows_grow_until_the_grid_fits_and_stop_at_8():
    rows = [persistent_kernels.plan(64, 128, 2, sm_count=sms, smem_per_block=232448)
            ["rows_per_block"] for sms in (256, 255, 128, 64, 32, 8)]
    assert rows == [1, 2, 2, 4, 8, 8]


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


def test_switch_is_auto_by_default_and_restored():
    previous = gru_cuda.set_persistent(False)
    try:
        with gru_cuda.persistent():
            assert gru_cuda.set_persistent(True) is True
            with gru_cuda.persistent(False):
                assert gru_cuda.set_persistent(False) is False
            with gru_cuda.persistent("auto"):
                assert gru_cuda.set_persistent("auto") == "auto"
            assert gru_cuda.set_persistent(True) is True
        assert gru_cuda.set_persistent(False) is False
    finally:
        gru_cuda.set_persistent(previous)


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
    before = gru_cuda.set_persistent(False)
    gru_cuda.set_persistent(before)
    with gru_cuda.persistent("require"):
        assert gru_cuda.set_persistent("require") == "require"
        with gru_cuda.persistent(True):
            assert gru_cuda.set_persistent(True) is True
        assert gru_cuda.set_persistent("require") == "require"
    assert gru_cuda.set_persistent(before) == before


def test_mode_must_be_off_on_require_or_auto():
    with pytest.raises(ValueError, match="False, True, 'require', 'auto', got 'always'"):
        gru_cuda.set_persistent("always")
    with pytest.raises(RuntimeError, match=r"must be 0 \(off\), 1 \(on\), 2 \(require\) or 3 "
                                           r"\(auto\)"):
        torch.ops.gru_cuda.set_persistent_mode(4)


def _python_with(code, **environment):
    """A fresh interpreter running code with these environment variables set."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **environment}, timeout=120)


@pytest.mark.parametrize("value,mode", [("1", True), ("on", True), ("require", "require"),
                                        ("0", False), ("off", False), ("auto", "auto"),
                                        ("", "auto")])
def test_environment_sets_the_starting_mode(value, mode):
    done = _python_with("import gru_cuda; print(repr(gru_cuda.set_persistent(False)))",
                        GRU_CUDA_PERSISTENT=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == repr(mode)


def test_auto_mode_is_the_default():
    environment = {k: v for k, v in os.environ.items() if k != "GRU_CUDA_PERSISTENT"}
    done = subprocess.run([sys.executable, "-c",
                           "import gru_cuda; print(repr(gru_cuda.set_persistent(False)))"],
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          capture_output=True, text=True, env=environment, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "'auto'"


def test_an_unknown_environment_value_is_an_error():
    done = _python_with("import gru_cuda; gru_cuda.set_persistent(True)",
                        GRU_CUDA_PERSISTENT="yes")
    assert done.returncode != 0
    assert "GRU_CUDA_PERSISTENT must be 0, off, 1, on, require or auto, got 'yes'" in done.stderr


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.float64])
def test_measured_defaults_name_a_form_the_plan_can_take(dtype):
    """Auto mode's table: float64 never (the plan refuses it); elsewhere none, or a form and
    variant the plan chooses on an H100 for that shape with those settings."""
    shapes = itertools.product([32, 64, 128, 256, 512, 1024, 2048], [1, 8, 64, 128, 256], [1, 2])
    choices = [(H, N, D, persistent_kernels.measured_default(H, N, D, dtype))
               for H, N, D in shapes]
    choices = [c for c in choices if c[3] is not None]
    if dtype == torch.float64:
        assert choices == []
        return
    if not choices:
        pytest.skip(f"no measured row for {dtype} (the table fills from GPU runs)")
    for H, N, D, choice in choices:
        assert choice["rows_per_warp"] in (1, 2, 4) and choice["cluster_size"] in (8, 16)
        clusters = (132 // 8, 132 // 16) if choice["cluster_size"] == 8 else (0, 132 // 16)
        # The kernels' dynamic shared memory: the opt-in maximum less sm_90's reserved 1 KB.
        p = persistent_kernels.plan(H, N, D, dtype, sm_count=132, smem_per_block=232448 - 1024,
                                    local=choice["form"] == "local",
                                    rows_per_warp=choice["rows_per_warp"], mma=choice["mma"],
                                    registers=choice["registers"],
                                    cluster=choice["form"] == "cluster", clusters=clusters)
        assert p["refusal"] == "none" and p["form"] == choice["form"], (H, N, D, choice, p)


def test_plan_fields_come_from_cpp():
    assert persistent_kernels.PLAN_FIELDS[:2] == ("refusal", "form")
    assert persistent_kernels.FORMS == ("grid", "local", "cluster")
    assert len(persistent_kernels.PLAN_FIELDS) == len(torch.ops.gru_cuda.persistent_plan(
        256, 8, 1, False, **H100))


@pytest.mark.parametrize("H,wanted,rows", [(256, 4, 4), (256, 2, 2), (512, 4, 2), (512, 1, 1),
                                           (1024, 4, 1)])
def test_grid_form_rows_a_warp_as_many_as_the_chunk_form_holds(H, wanted, rows):
    p = persistent_kernels.plan(H, 64, 1, **H100, rows_per_warp=wanted)
    assert p["form"] == "grid" and p["rows_per_warp"] == rows


@pytest.mark.parametrize("H,dtype,tf32,mma", [
    (256, torch.bfloat16, False, 1), (1024, torch.float16, False, 1), (200, torch.bfloat16, False, 0),
    (256, torch.float32, True, 1), (256, torch.float32, False, 0), (200, torch.float32, True, 0)])
def test_grid_form_tensor_cores_where_h_is_a_multiple_of_16(H, dtype, tf32, mma):
    """The half types, and float32 only where cuDNN's RNNs may use TF32 (as TF32)."""
    N = 64
    with precision.cudnn_rnn_tf32(tf32):
        p = persistent_kernels.plan(H, N, 1, dtype, **H100, mma=True)
    assert p["form"] == "grid" and p["mma"] == mma
    k, size = p["units_per_block"], dtype.itemsize
    tile_rows = -(-3 * k // 16) * 16  # W_hh's rows padded to 16-row tiles, padded apart
    row = H + (8 if size == 2 else 4)
    weights = -(-(tile_rows * row * size // 4) // 4) * 4 if mma else 3 * k * H
    assert p["smem_forward"] == 4 * (weights + N * 3 * k)
    # the backward: the units' W_hh columns as one 16-row tile, rows of 3H plus the padding
    columns = -(-(16 * (row + 2 * H) * size // 4) // 4) * 4 if mma else k * 3 * H
    assert p["smem_backward"] == 4 * columns
    assert p["rows_per_warp"] == (0 if mma else 1)


def test_tensor_cores_give_way_to_ffma_where_their_padding_does_not_fit():
    with precision.cudnn_rnn_tf32(True):
        p = persistent_kernels.plan(768, 128, 2, torch.float32, **A100, mma=True)
    assert p["refusal"] == "none" and p["mma"] == 0 and p["rows_per_warp"] == 1


def test_tensor_cores_are_off_by_default_and_not_for_the_local_form():
    assert persistent_kernels.mma_allowed() is False
    assert persistent_kernels.plan(256, 8, 1, torch.bfloat16, **H100)["mma"] == 0
    assert persistent_kernels.plan(128, 8, 1, torch.bfloat16, **H100, mma=True)["mma"] == 0
    assert persistent_kernels.set_mma(True) is False
    assert persistent_kernels.plan(256, 8, 1, torch.bfloat16, **H100)["mma"] == 1
    assert persistent_kernels.set_mma(False) is True


def test_local_form_has_no_rows_a_warp():
    assert persistent_kernels.plan(128, 64, 1, **H100, rows_per_warp=4)["rows_per_warp"] == 0


def test_rows_a_warp_setting_is_1_by_default_and_checked():
    assert persistent_kernels.warp_rows() == 1
    assert persistent_kernels.set_warp_rows(4) == 1
    assert persistent_kernels.plan(256, 8, 1, **H100)["rows_per_warp"] == 4  # follows it
    assert persistent_kernels.set_warp_rows(1) == 4
    with pytest.raises(RuntimeError, match="must be 1, 2 or 4, got 3"):
        persistent_kernels.set_warp_rows(3)


@pytest.mark.parametrize("variable,getter,value,ok,allowed", [
    ("GRU_CUDA_PERSISTENT_ROWS", "warp_rows", "2", True, None),
    ("GRU_CUDA_PERSISTENT_ROWS", "warp_rows", "3", False, "1, 2 or 4"),
    ("GRU_CUDA_PERSISTENT_CLUSTER_SIZE", "cluster_size", "16", True, None),
    ("GRU_CUDA_PERSISTENT_CLUSTER_SIZE", "cluster_size", "12", False, "8 or 16")])
def test_environment_sets_the_numeric_variants(variable, getter, value, ok, allowed):
    done = _python_with(f"from gru_cuda import persistent_kernels as p; print(p.{getter}())",
                        **{variable: value})
    assert (done.returncode == 0) == ok, done.stderr
    if ok:
        assert done.stdout.strip().splitlines()[-1] == value
    else:
        assert f"{variable} must be {allowed}, got '{value}'" in done.stderr


def test_local_form_switch_is_on_by_default_and_restored():
    assert persistent_kernels.set_local_form(False) is True
    assert persistent_kernels.set_local_form(True) is False


@pytest.mark.parametrize("value,allowed", [("0", False), ("1", True)])
def test_environment_sets_the_local_form(value, allowed):
    done = _python_with("from gru_cuda import persistent_kernels as p; print(p.set_local_form(True))",
                        GRU_CUDA_PERSISTENT_LOCAL=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(allowed)


def test_environment_local_form_other_than_0_or_1_is_an_error():
    done = _python_with("from gru_cuda import persistent_kernels as p; p.set_local_form(True)",
                        GRU_CUDA_PERSISTENT_LOCAL="yes")
    assert done.returncode != 0
    assert "GRU_CUDA_PERSISTENT_LOCAL must be 0 or 1, got 'yes'" in done.stderr


@pytest.mark.parametrize("H,N,D,rows,chunks", [
    (16, 8, 1, 1, 16), (64, 300, 2, 8, 16), (65, 8, 2, 1, 32), (128, 64, 2, 1, 32),
    (128, 128, 2, 2, 32), (128, 300, 1, 4, 0), (129, 8, 1, 1, 0), (137, 8, 1, 1, 0)])
def test_local_form_keeps_w_hh_in_registers_where_a_thread_holds_its_part(H, N, D, rows,
                                                                         chunks):
    """4 values a chunk: up to H=64 at any rows a block (192 threads); up to H=128 at 1 or
    2 rows (384 threads, 168 registers each); else shared memory."""
    p = persistent_kernels.plan(H, N, D, **H100, registers=True)
    assert p["form"] == "local" and p["rows_per_block"] == rows
    assert p["register_chunks"] == chunks
    if chunks:
        assert H <= 4 * chunks and p["threads"] <= 12 * chunks  # a thread per gate row
    assert persistent_kernels.plan(H, N, D, **H100, registers=False)["register_chunks"] == 0


def test_registers_are_off_by_default_grid_form_has_none_and_restored():
    assert persistent_kernels.registers_allowed() is False
    assert persistent_kernels.plan(64, 8, 1, **H100)["register_chunks"] == 0
    assert persistent_kernels.plan(256, 8, 1, **H100, registers=True)["register_chunks"] == 0
    assert persistent_kernels.set_registers(True) is False
    assert persistent_kernels.plan(64, 8, 1, **H100)["register_chunks"] == 16  # follows it
    assert persistent_kernels.set_registers(False) is True


@pytest.mark.parametrize("variable,getter", [("GRU_CUDA_PERSISTENT_REGISTERS", "registers_allowed"),
                                             ("GRU_CUDA_PERSISTENT_MMA", "mma_allowed"),
                                             ("GRU_CUDA_PERSISTENT_CLUSTER", "cluster_allowed")])
@pytest.mark.parametrize("value,allowed", [("0", False), ("1", True)])
def test_environment_sets_the_opt_in_variants(variable, getter, value, allowed):
    done = _python_with(f"from gru_cuda import persistent_kernels as p; print(p.{getter}())",
                        **{variable: value})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(allowed)


@pytest.mark.parametrize("H,N,D", list(itertools.product([138, 256], [1, 8, 32, 64], [1, 2])))
def test_h100_cluster_form_spreads_the_rows_over_clusters_of_8(H, N, D):
    """16 clusters of 8 at once (the default guess from 132 SMs): a direction's rows over
    16 / D of them, each block owning H / 8 units."""
    p = persistent_kernels.plan(H, N, D, **H100, cluster=True)
    assert p["refusal"] == "none" and p["form"] == "cluster" and p["cluster_size"] == 8
    R, k = -(-N // (16 // D)), -(-H // 8)
    assert p["rows_per_block"] == R and p["units_per_block"] == k
    assert p["blocks_per_direction"] == 8 * -(-N // R) and p["grid"] == D * p["blocks_per_direction"]
    assert p["grid"] <= 128  # one wave
    assert p["smem_forward"] == 4 * (3 * k * H + R * 3 * k + 2 * R * H) <= H100["smem_per_block"]
    # W_hh's gate rows, the units' gradient of gh, the 8 blocks' partial dh for the units
    assert p["smem_backward"] == 4 * (3 * k * H + R * 3 * k + 2 * 8 * R * k) <= H100["smem_per_block"]
    assert p["threads"] == 256 and p["mma"] == 0 and p["rows_per_warp"] == 1


@pytest.mark.parametrize("H,N,D,form,size", [
    (512, 8, 1, "cluster", 16),    # a slice of 8 would not fit; 8 clusters of 16 at once
    (512, 64, 1, "cluster", 16),   # 8 rows a cluster: exactly the shared memory there is
    (512, 72, 1, "grid", 0),       # 9 would not fit
    (384, 64, 1, "cluster", 16),   # 4 rows a cluster of 8 would not fit; 8 of 16 do
    (520, 1, 1, "grid", 0),        # beyond the kernels' 16 chunks
    (128, 8, 1, "local", 0),       # the local form first, where it runs
])
def test_cluster_form_where_its_slices_fit_else_the_others(H, N, D, form, size):
    p = persistent_kernels.plan(H, N, D, **H100, cluster=True)
    assert p["form"] == form and p["cluster_size"] == size and p["refusal"] == "none"


def test_cluster_form_counts_the_state_copies_in_the_layers_type():
    """The forward's copies of the state and the backward's gradient of gh are in the
    layer's type; the backward's partial sums in float. At H=512 (clusters of 16, 32
    units a block) both passes fit 8 rows a cluster (float32 exactly), not 9, whatever
    the type: N up to 64."""
    for dtype, state_bytes in ((torch.float32, 4), (torch.bfloat16, 2), (torch.float16, 2)):
        p = persistent_kernels.plan(512, 64, 1, dtype, **H100, cluster=True)
        assert p["form"] == "cluster" and p["rows_per_block"] == 8
        assert p["smem_forward"] == 4 * (32 * 1536 + 8 * 96) + 2 * 8 * 512 * state_bytes
        assert p["smem_backward"] == \
            4 * (32 * 1536 + 2 * 16 * 8 * 32) + 8 * 96 * state_bytes <= 232448
        assert persistent_kernels.plan(512, 72, 1, dtype, **H100, cluster=True)["form"] == "grid"


@pytest.mark.parametrize("H,N,dtype,tf32,mma,size", [
    (256, 8, torch.bfloat16, False, 1, 8), (512, 32, torch.float16, False, 1, 8),
    (512, 64, torch.float16, False, 1, 8), (200, 8, torch.bfloat16, False, 0, 8),
    (256, 8, torch.float32, True, 1, 8), (256, 8, torch.float32, False, 0, 8),
    (512, 32, torch.float32, True, 1, 16),
    (512, 64, torch.float32, True, 0, 16)])  # TF32's padded rows do not fit where FFMA's just do
def test_cluster_form_on_tensor_cores_where_allowed_and_its_tiles_fit(H, N, dtype, tf32, mma,
                                                                      size):
    """Both passes' slices of W_hh in the layer's type: the forward's as the grid form's
    tensor cores lay it out, the backward's transposed (H rows of the 3k gate rows padded
    to 16, plus the bank padding); the state's and gh's gradient's rows padded likewise.
    In a half type the slices take half the bytes: at H=512 a cluster of 8 fits (FFMA's
    needs 16)."""
    with precision.cudnn_rnn_tf32(tf32):
        p = persistent_kernels.plan(H, N, 1, dtype, **H100, cluster=True, mma=True)
    assert p["form"] == "cluster" and p["mma"] == mma and p["cluster_size"] == size
    assert p["rows_per_warp"] == (0 if mma else 1)
    k, R, C, b = p["units_per_block"], p["rows_per_block"], p["cluster_size"], dtype.itemsize
    pad = 8 if b == 2 else 4

    def floats(values):  # values of b bytes in float slots, a multiple of 4
        return -(-(values * b // 4) // 4) * 4
    forward_w = floats(-(-3 * k // 16) * 16 * (H + pad)) if mma else 3 * k * H
    state_row = H + pad if mma else H  # rows a tile reads padded off each other's banks
    assert p["smem_forward"] == 4 * (forward_w + R * 3 * k) + 2 * R * state_row * b
    K_row = -(-3 * k // 16) * 16 + pad if mma else 3 * k
    backward_w = floats(H * K_row) if mma else 3 * k * H
    assert p["smem_backward"] == 4 * (backward_w + 2 * C * R * k) + -(-R * K_row * b // 4) * 4
    assert max(p["smem_forward"], p["smem_backward"]) <= H100["smem_per_block"]


def test_cluster_form_needs_clusters_and_takes_blocks_without_units():
    assert persistent_kernels.plan(256, 8, 1, **A100, cluster=True, clusters=(0, 0))["form"] == "grid"
    assert persistent_kernels.plan(256, 8, 2, **H100, cluster=True, clusters=(1, 0))["form"] == "grid"
    p = persistent_kernels.plan(25, 3, 1, **H100, local=False, cluster=True)
    assert p["form"] == "cluster" and p["units_per_block"] == 4  # block 7 of 8 owns none
    p = persistent_kernels.plan(256, 32, 1, **H100, cluster=True, clusters=(3, 1))
    assert p["rows_per_block"] == 11 and p["grid"] == 24  # as many clusters as run at once


def test_clusters_of_16_only_where_asked_or_needed():
    assert persistent_kernels.cluster_size() == 8
    assert persistent_kernels.set_cluster_size(16) == 8
    p = persistent_kernels.plan(256, 8, 1, **H100, cluster=True)  # 8 clusters of 16 at once
    assert p["cluster_size"] == 16 and p["units_per_block"] == 16 and p["rows_per_block"] == 1
    assert persistent_kernels.set_cluster_size(8) == 16
    assert persistent_kernels.plan(256, 8, 1, **H100, cluster=True)["cluster_size"] == 8
    with pytest.raises(RuntimeError, match="must be 8 or 16, got 4"):
        persistent_kernels.set_cluster_size(4)


def test_cluster_form_is_off_by_default_and_restored():
    assert persistent_kernels.cluster_allowed() is False
    assert persistent_kernels.plan(256, 8, 1, **H100)["form"] == "grid"
    assert persistent_kernels.set_cluster(True) is False
    assert persistent_kernels.plan(256, 8, 1, **H100)["form"] == "cluster"  # follows it
    assert persistent_kernels.set_cluster(False) is True
