"""Few rows on the CPU (a decoding step's batch): the layer's projections run on the
CPU's small matmul instead of ATen's GEMM (float32, float64; bfloat16 up to 2 rows). Its
counter proves which ran; results match nn.GRU and nn.GRUCell, forward and backward,
across its tails (sizes not a multiple of its vector width or of its four-row
blocks)."""
import pytest
import torch
from torch import nn

import gru_cuda

from conftest import assert_close

MAX_ROWS = 8  # the most rows the small matmul takes (small_matmul_cpu.cpp)


def takes(rows, K, dtype=torch.float32):
    """Whether the small matmul takes a product of `rows` rows, K long (as its takes())."""
    if dtype == torch.bfloat16:
        return rows <= 2
    return rows <= 4 or (rows <= MAX_ROWS and K >= 256)


def small_matmul_count():
    return torch.ops.gru_cuda.small_matmul_count()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("T", [1, 3])
@pytest.mark.parametrize("N", [1, 2, 3, 5, 8, 9])
def test_few_rows_match_nn_gru(dtype, bidirectional, T, N):
    """The input projection (K = 260) takes up to 8 rows, the recurrent one (K = 37) up to
    4: between them every block of the kernel and its tails run."""
    torch.manual_seed(T * 100 + N)
    ours = gru_cuda.GRU(260, 37, bidirectional=bidirectional, dtype=dtype)
    ref = nn.GRU(260, 37, bidirectional=bidirectional, dtype=dtype)
    ref.load_state_dict(ours.state_dict())
    D = 2 if bidirectional else 1
    x = torch.randn(T, N, 260, dtype=dtype, requires_grad=True)
    hx = torch.randn(D, N, 37, dtype=dtype, requires_grad=True)

    before = small_matmul_count()
    out, h_n = ours(x, hx)
    ran = small_matmul_count() - before
    assert ran == D * T * takes(N, 37) + D * takes(T * N, 260)  # per step; all rows
    want_out, want_h_n = ref(x, hx)
    assert_close(out, want_out, dtype, "output")
    assert_close(h_n, want_h_n, dtype, "h_n")

    grad_out, grad_h_n = torch.randn_like(out), torch.randn_like(h_n)
    got = torch.autograd.grad((out, h_n), [x, hx, *ours.parameters()], (grad_out, grad_h_n))
    want = torch.autograd.grad((want_out, want_h_n), [x, hx, *ref.parameters()],
                               (grad_out, grad_h_n))
    for name, g, w in zip(["x", "hx", *dict(ours.named_parameters())], got, want):
        assert_close(g, w, dtype, name)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("N", [1, 4, 7])
@pytest.mark.parametrize("bias", [True, False])
def test_cell_step_matches_nn_grucell(dtype, N, bias):
    torch.manual_seed(N)
    ours = gru_cuda.GRUCell(300, 65, bias=bias, dtype=dtype)
    ref = nn.GRUCell(300, 65, bias=bias, dtype=dtype)
    ref.load_state_dict(ours.state_dict())
    x, h = torch.randn(N, 300, dtype=dtype), torch.randn(N, 65, dtype=dtype)
    before = small_matmul_count()
    with torch.no_grad():
        got = ours(x, h)
    assert small_matmul_count() - before == takes(N, 300) + takes(N, 65)
    assert_close(got, ref(x, h).detach(), dtype)


@pytest.mark.parametrize("N", [1, 2, 3])
def test_bfloat16_cell_step_sums_in_float32(N):
    """bfloat16 up to 2 rows, its products summed in float32 (K = 300 and 65: both leave
    a tail past whole vectors): within bfloat16's rounding of a float32 GRUCell."""
    torch.manual_seed(40 + N)
    ours = gru_cuda.GRUCell(300, 65, dtype=torch.bfloat16)
    ref = nn.GRUCell(300, 65)
    ref.load_state_dict(ours.state_dict())
    x, h = torch.randn(N, 300, dtype=torch.bfloat16), torch.randn(N, 65, dtype=torch.bfloat16)
    before = small_matmul_count()
    with torch.no_grad():
        got = ours(x, h)
        want = ref(x.float(), h.float())
    assert small_matmul_count() - before == 2 * takes(N, 300, torch.bfloat16)
    assert ((got.float() - want).abs().max() / want.abs().max()).item() < 1e-2


def test_packed_steps_with_few_live_rows():
    """A packed batch shrinks step by step: every step has at most 4 live rows."""
    torch.manual_seed(0)
    ours = gru_cuda.GRU(6, 21, bidirectional=True, dtype=torch.float64)
    ref = nn.GRU(6, 21, bidirectional=True, dtype=torch.float64)
    ref.load_state_dict(ours.state_dict())
    seqs = [torch.randn(n, 6, dtype=torch.float64) for n in (5, 2, 4, 1)]
    packed = nn.utils.rnn.pack_sequence(seqs, enforce_sorted=False)
    before = small_matmul_count()
    out, h_n = ours(packed)
    assert small_matmul_count() - before == 2 * 5  # 5 steps, both directions; 12 rows
    want_out, want_h_n = ref(packed)
    assert_close(out.data, want_out.data, torch.float64, "output")
    assert_close(h_n, want_h_n, torch.float64, "h_n")


def test_other_dtypes_and_many_rows_leave_it():
    before = small_matmul_count()
    with torch.no_grad():
        gru_cuda.GRU(8, 8, dtype=torch.float16)(torch.randn(1, 2, 8, dtype=torch.float16))
        gru_cuda.GRU(8, 8, dtype=torch.bfloat16)(torch.randn(1, 3, 8, dtype=torch.bfloat16))
        gru_cuda.GRU(260, 8)(torch.randn(1, MAX_ROWS + 1, 260))
    assert small_matmul_count() == before
