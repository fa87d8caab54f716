"""CUDA-only checks (skipped without a GPU): autocast, CUDA graphs, streams, odd and large
sizes. Everything device-generic (half types included) runs on CUDA through the `device`
fixture."""
import contextlib

import pytest
import torch
from torch import nn

import gru_cuda
from conftest import cuda_path, fwd_bwd, rel_err
from gru_cuda import persistent_kernels, precision
from gru_cuda._switches import mode_within

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(autouse=True, params=["per-step", "persistent", "replay"])
def path(request):
    """Every test here runs on the three CUDA paths (layers the persistent kernels do not
    take run per step, replayed or not)."""
    with cuda_path(request.param):
        yield request.param


def test_autocast_runs_in_autocast_dtype():
    torch.manual_seed(52)
    model = gru_cuda.GRU(32, 48, device="cuda")
    x = torch.randn(20, 5, 32, device="cuda")
    expected, _ = model(x)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out, h_n = model(x)
        out.float().sum().backward()
    assert out.dtype == torch.bfloat16 and h_n.dtype == torch.bfloat16
    assert model.weight_ih_l0.grad is not None and model.weight_ih_l0.grad.dtype == torch.float32
    assert rel_err(out, expected) < 1e-2


@pytest.mark.parametrize("H,persistent,cluster", [(24, False, False), (24, "require", False),
                                                  (256, "require", False),
                                                  (256, "require", True)])
def test_cuda_graph_capture_and_replay_of_forward_backward(H, persistent, cluster):
    """A user's torch.cuda.graph of forward+backward, replayed with new input, against
    eager. With the persistent kernels on, the local form and the cluster form (ordinary
    launches) are captured into it, both layers and passes; the grid form (a cooperative
    launch, whose refusal a capture could not fall back from) leaves its layers to the
    per-step path (refused). The warm-up runs with the same switches, as a user's would
    (it measures the device's clusters, which a capture may not ask)."""
    if cluster and torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("thread-block clusters need a Hopper or newer GPU")
    local_layers = 2 if persistent and H <= 128 else 0
    cluster_layers = 2 if persistent and cluster else 0
    switches = contextlib.ExitStack()
    switches.enter_context(gru_cuda.persistent(persistent))
    switches.enter_context(mode_within(persistent_kernels.set_cluster, cluster))
    torch.manual_seed(53)
    model = gru_cuda.GRU(16, H, num_layers=2, device="cuda")
    static_x = torch.randn(12, 4, 16, device="cuda", requires_grad=True)

    def step():
        out, h_n = model(static_x)
        (out.sum() + h_n.sum()).backward()
        return out

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with switches:
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up outside the capture
                model.zero_grad(set_to_none=False)
                static_x.grad = None
                step()
        torch.cuda.current_stream().wait_stream(side)
        model.zero_grad(set_to_none=False)
        static_x.grad = torch.zeros_like(static_x)
        graph = torch.cuda.CUDAGraph()
        before = persistent_kernels.counts()
        with torch.cuda.graph(graph):
            static_out = step()
        after = persistent_kernels.counts()
    ran = {k: after[k] - before[k] for k in after}
    assert ran["local_forward"] == ran["local_backward"] == local_layers
    assert ran["cluster_forward"] == ran["cluster_backward"] == cluster_layers
    # the grid form: none
    assert ran["forward"] == ran["backward"] == local_layers + cluster_layers
    assert ran["refused"] == (4 if persistent and not local_layers + cluster_layers else 0)

    new_x = torch.randn_like(static_x)
    static_x.data.copy_(new_x)
    model.zero_grad(set_to_none=False)
    static_x.grad.zero_()
    graph.replay()
    torch.cuda.synchronize()

    eager_x = new_x.clone().requires_grad_()
    reference = gru_cuda.GRU(16, H, num_layers=2, device="cuda")
    reference.load_state_dict(model.state_dict())
    out, h_n = reference(eager_x)
    (out.sum() + h_n.sum()).backward()
    pairs = [(static_out, out), (static_x.grad, eager_x.grad),
             (model.weight_hh_l1.grad, reference.weight_hh_l1.grad)]
    for i, (a, b) in enumerate(pairs):  # the reference runs per step
        assert rel_err(a, b) < 1e-5, f"tensor {i}"


def test_non_default_stream_gives_the_same_result():
    torch.manual_seed(54)
    model = gru_cuda.GRU(10, 20, bidirectional=True, device="cuda")
    x = torch.randn(15, 6, 10, device="cuda", requires_grad=True)
    expected = fwd_bwd(model, x, torch.zeros(2, 6, 20, device="cuda", requires_grad=True))
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got = fwd_bwd(model, x, torch.zeros(2, 6, 20, device="cuda", requires_grad=True))
    torch.cuda.current_stream().wait_stream(stream)
    torch.cuda.synchronize()
    for a, b in zip(got, expected):
        assert torch.equal(a, b)


@pytest.mark.parametrize("T,N,I,H", [(5, 7, 19, 33), (3, 1, 1, 1), (4, 300, 7, 257),
                                     (2, 4100, 3, 4097)])
def test_odd_and_large_sizes_match_nn_gru(T, N, I, H):
    """Sizes that are not multiples of 32 or of the block size, and one larger than one
    grid of blocks covers (the kernels' grid-stride loop)."""
    torch.manual_seed(55)
    ours = gru_cuda.GRU(I, H, device="cuda")
    theirs = nn.GRU(I, H, device="cuda")
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(T, N, I, device="cuda", requires_grad=True)
    hx = torch.randn(1, N, H, device="cuda", requires_grad=True)
    got, expected = fwd_bwd(ours, x, hx), fwd_bwd(theirs, x, hx)
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < 1e-4, f"tensor {i}"  # cuDNN may use TF32-free fp32 GEMMs


def test_device_mismatch_is_an_error():
    model = gru_cuda.GRU(4, 5, device="cuda")
    with pytest.raises(RuntimeError, match="input is on cpu but the GRU's parameters are on cuda"):
        model(torch.randn(3, 2, 4))
    with pytest.raises(RuntimeError, match="hx is on cpu"):
        model(torch.randn(3, 2, 4, device="cuda"), torch.randn(1, 2, 5))


def _packed_fwd_bwd(model, x, lengths):
    """Output data, h_n and every gradient of a fixed loss, padded or packed input."""
    inp = x if lengths is None else nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(lengths), enforce_sorted=False)
    out, h_n = model(inp)
    data = out if lengths is None else out.data
    weights = torch.linspace(-1, 1, data.shape[-1], device=x.device)
    loss = (data.float() * weights).sum() + h_n.float().sum()
    return [data, h_n, *torch.autograd.grad(loss, [x, *model.parameters()])]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bidirectional,lengths", [(False, None), (True, None),
                                                   (True, [9, 3, 7, 1, 9, 5])])
def test_persistent_path_runs_and_matches_the_per_step_path(dtype, bidirectional, lengths):
    torch.manual_seed(56)
    model = gru_cuda.GRU(48, 256, num_layers=2, bidirectional=bidirectional, device="cuda",
                         dtype=dtype)
    x = torch.randn(9, 6, 48, device="cuda", dtype=dtype, requires_grad=True)
    with gru_cuda.persistent(False):
        expected = _packed_fwd_bwd(model, x, lengths)
    before = persistent_kernels.counts()
    with gru_cuda.persistent("require"):
        got = _packed_fwd_bwd(model, x, lengths)
    after = persistent_kernels.counts()
    assert after["forward"] - before["forward"] == 2  # both layers
    assert after["backward"] - before["backward"] == 2
    assert after["fallback"] == before["fallback"]
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < tol, f"tensor {i}"


def _persistent_against_per_step(model, run, setter=None, value=None):
    """run(model) on the per-step path, then on the persistent path in require mode (with
    setter(value) for the duration, if given): both results and the counts' changes."""
    with gru_cuda.persistent(False):
        expected = run(model)
    before = persistent_kernels.counts()
    with mode_within(setter, value) if setter else contextlib.nullcontext(), \
            gru_cuda.persistent("require"):
        got = run(model)
    after = persistent_kernels.counts()
    return got, expected, {k: after[k] - before[k] for k in after}


@pytest.mark.parametrize("local", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_small_h_runs_the_chosen_form_and_matches_the_per_step_path(local, dtype):
    """H=64: the local form (a block per batch row holding all of W_hh), or, with it
    switched off, the grid form; 2 layers, bidirectional, packed."""
    torch.manual_seed(58)
    model = gru_cuda.GRU(20, 64, num_layers=2, bidirectional=True, device="cuda", dtype=dtype)
    x = torch.randn(11, 7, 20, device="cuda", dtype=dtype, requires_grad=True)
    lengths = [11, 4, 9, 1, 11, 6, 2]
    got, expected, ran = _persistent_against_per_step(
        model, lambda m: _packed_fwd_bwd(m, x, lengths), persistent_kernels.set_local_form, local)
    assert ran["forward"] == ran["backward"] == 2
    assert ran["local_forward"] == ran["local_backward"] == (2 if local else 0)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < tol, f"tensor {i}"


def test_local_form_takes_more_rows_than_the_grid_form():
    """N=300 at H=32: past the grid form's 128 rows, in the local form's blocks of rows."""
    torch.manual_seed(59)
    model = gru_cuda.GRU(8, 32, bidirectional=True, device="cuda")
    x = torch.randn(6, 300, 8, device="cuda", requires_grad=True)
    hx = torch.randn(2, 300, 32, device="cuda", requires_grad=True)
    got, expected, ran = _persistent_against_per_step(model, lambda m: fwd_bwd(m, x, hx))
    assert ran["local_forward"] == ran["local_backward"] == 1
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < 1e-5, f"tensor {i}"


@pytest.mark.parametrize("H,N,in_registers", [(64, 7, True), (101, 3, True), (128, 5, True),
                                               (128, 300, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_local_form_keeps_w_hh_in_registers_where_they_hold_it(H, N, in_registers, dtype):
    """With registers allowed: H up to 64, and up to 128 at 1 or 2 batch rows a block, keep
    each thread's part of W_hh in registers in both passes (counted); H=128 at N=300 (8
    rows a block) keeps shared memory. Against the per-step path; packed, two directions."""
    torch.manual_seed(62)
    model = gru_cuda.GRU(12, H, bidirectional=True, device="cuda", dtype=dtype)
    x = torch.randn(6, N, 12, device="cuda", dtype=dtype, requires_grad=True)
    lengths = torch.randint(1, 7, (N,)).tolist()
    lengths[0] = 6
    got, expected, ran = _persistent_against_per_step(
        model, lambda m: _packed_fwd_bwd(m, x, lengths), persistent_kernels.set_registers, True)
    assert ran["local_forward"] == ran["local_backward"] == 1
    assert ran["local_forward_registers"] == ran["local_backward_registers"] == \
        (1 if in_registers else 0)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < tol, f"tensor {i}"


def test_device_figures_for_the_plan():
    """SMs and shared memory as torch reports them; clusters of 8 and 16 (one block an SM)
    measured on a Hopper card whose kernels were built for sm_90 or later, at most the SMs'
    worth, none otherwise (a build for 8.0+PTX runs compute_80 code there: cluster bodies
    that only trap)."""
    props = torch.cuda.get_device_properties(0)
    sms, smem, of_8, of_16, ptx = torch.ops.gru_cuda.persistent_device_limits(0)
    assert 80 <= ptx <= 10 * props.major + props.minor
    # The dynamic maximum: the opt-in one less the kernels' static shared memory (1 KB
    # reserved in sm_90 builds).
    assert sms == props.multi_processor_count
    assert 0 <= props.shared_memory_per_block_optin - smem <= 4096
    if props.major >= 9 and ptx >= 90:
        assert 1 <= of_8 <= sms // 8 and 1 <= of_16 <= sms // 16
    else:
        assert of_8 == of_16 == 0


@pytest.mark.parametrize("form", ["local", "grid", "cluster"])
def test_the_fullest_shared_memory_the_plan_gives_launches(form):
    """For each form, the layer whose plan takes the most shared memory on this device (for
    the local and cluster forms within 4 KB of its limit; the grid form spreads W_hh over
    the SMs) runs persistent in require mode, forward and backward, with the per-step
    path's result: the plan's limit is one the launch accepts."""
    if form == "cluster" and torch.cuda.get_device_capability()[0] < 9:
        pytest.skip("thread-block clusters need a Hopper or newer GPU")
    limit = torch.ops.gru_cuda.persistent_device_limits(0)[1]
    best = None
    for H in range(8, 1025, 8):
        for N in (1, 2, 4, 8, 16, 32, 64, 128):
            p = persistent_kernels.plan(H, N, local=form == "local", cluster=form == "cluster")
            if p["refusal"] == "none" and p["form"] == form:
                used = max(p["smem_forward"], p["smem_backward"])
                if best is None or used > best[0]:
                    best = (used, H, N)
    used, H, N = best
    assert form == "grid" or limit - used < 4096, best
    torch.manual_seed(61)
    model = gru_cuda.GRU(8, H, device="cuda")
    x = torch.randn(5, N, 8, device="cuda", requires_grad=True)
    hx = torch.randn(1, N, H, device="cuda", requires_grad=True)
    setter, value = {"local": (None, None), "grid": (persistent_kernels.set_local_form, False),
                     "cluster": (persistent_kernels.set_cluster, True)}[form]
    got, expected, ran = _persistent_against_per_step(model, lambda m: fwd_bwd(m, x, hx),
                                                      setter, value)
    assert ran["forward"] == 1 and ran["backward"] == 1 and ran["fallback"] == 0, (best, ran)
    if form != "grid":
        assert ran[f"{form}_forward"] == 1 and ran[f"{form}_backward"] == 1, (best, ran)
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < 1e-5, f"tensor {i} at H={H}, N={N} ({form})"


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_capability()[0] < 9,
                    reason="thread-block clusters need a Hopper or newer GPU")
@pytest.mark.parametrize("H,N,smallest,size", [(256, 5, 8, 8), (200, 40, 8, 8), (512, 4, 8, 16),
                                               (256, 5, 16, 16), (512, 16, 8, 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cluster_form_runs_and_matches_the_per_step_path(H, N, smallest, size, dtype):
    """With the cluster form allowed: clusters of 8 (or 16 at H=512, where a slice of 8
    would not fit, or where 16 is the smallest allowed) run both passes (counted), against
    the per-step path; packed, two directions, rows ending at every step. At H=512 and
    N=16 a cluster takes 4 rows or more: its backward takes 2 units a lane (counted)."""
    torch.manual_seed(63)
    model = gru_cuda.GRU(12, H, bidirectional=True, device="cuda", dtype=dtype)
    x = torch.randn(7, N, 12, device="cuda", dtype=dtype, requires_grad=True)
    lengths = [7] + torch.randint(1, 8, (N - 1,)).tolist()
    with mode_within(persistent_kernels.set_cluster_size, smallest):
        plan = persistent_kernels.plan(H, N, 2, dtype, cluster=True)
        assert plan["cluster_size"] == size
        got, expected, ran = _persistent_against_per_step(
            model, lambda m: _packed_fwd_bwd(m, x, lengths), persistent_kernels.set_cluster,
            True)
    assert ran["cluster_forward"] == ran["cluster_backward"] == ran["forward"] == 1
    # 2 units a lane where the 4-row items of 64 units give each of the 8 warps one
    two_units = (plan["rows_per_block"] // 4) * -(-H // 64) >= 8
    assert ran["cluster_backward_lane_units_2"] == int(two_units)
    if (H, N) == (512, 16):
        assert two_units, "the case meant to run 2 units a lane does not"
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < tol, f"tensor {i}"


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_capability()[0] < 9,
                    reason="thread-block clusters need a Hopper or newer GPU")
@pytest.mark.parametrize("H,N", [(256, 5), (512, 4), (256, 100)])
@pytest.mark.parametrize("dtype,tf32", [(torch.bfloat16, True), (torch.float16, True),
                                        (torch.float32, True), (torch.float32, False)])
def test_cluster_form_on_tensor_cores_runs_and_matches_the_per_step_path(H, N, dtype, tf32):
    """The cluster form with tensor cores allowed: both passes on them (counted; float32 in
    TF32 only where cuDNN's RNNs may use TF32, else FFMA), against the per-step path;
    packed, two directions; 100 rows give a cluster more than one tile of 8 batch rows (at
    most 16 clusters of 8 run at once on a Hopper card). At H=512 the half types' slices
    fit clusters of 8; float32's need 16."""
    torch.manual_seed(64)
    model = gru_cuda.GRU(12, H, bidirectional=True, device="cuda", dtype=dtype)
    x = torch.randn(7, N, 12, device="cuda", dtype=dtype, requires_grad=True)
    lengths = [7] + torch.randint(1, 8, (N - 1,)).tolist()
    mma = tf32 or dtype != torch.float32
    with precision.cudnn_rnn_tf32(tf32), mode_within(persistent_kernels.set_cluster, True):
        plan = persistent_kernels.plan(H, N, 2, dtype, mma=True)
        size = 16 if H == 512 and dtype == torch.float32 else 8
        assert plan["form"] == "cluster" and plan["cluster_size"] == size
        assert plan["mma"] == int(mma)
        got, expected, ran = _persistent_against_per_step(
            model, lambda m: _packed_fwd_bwd(m, x, lengths), persistent_kernels.set_mma, True)
    assert ran["cluster_forward"] == ran["cluster_backward"] == ran["forward"] == 1
    assert ran["cluster_forward_mma"] == ran["cluster_backward_mma"] == int(mma)
    assert ran["grid_forward_mma"] == ran["grid_backward_mma"] == 0
    tol = 2e-2 if dtype != torch.float32 else 1e-2 if tf32 else 1e-5
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < tol, f"tensor {i}"


@pytest.mark.parametrize("rows", [1, 2, 4])
def test_grid_form_forward_variants_run_and_match_the_per_step_path(rows):
    """The grid form's forward taking 1, 2 or 4 batch rows a warp (H=256), counted by the
    rows that ran; packed, two directions, odd N."""
    torch.manual_seed(60)
    model = gru_cuda.GRU(16, 256, bidirectional=True, device="cuda")
    x = torch.randn(7, 5, 16, device="cuda", requires_grad=True)
    lengths = [7, 2, 5, 7, 1]
    got, expected, ran = _persistent_against_per_step(
        model, lambda m: _packed_fwd_bwd(m, x, lengths), persistent_kernels.set_warp_rows, rows)
    assert ran[f"grid_forward_rows_{rows}"] == ran["forward"] == 1
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < 1e-5, f"tensor {i}"


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_capability()[0] < 8,
                    reason="tensor cores for these types need an Ampere or newer GPU")
@pytest.mark.parametrize("tf32", [True, False])
def test_float32_tensor_cores_follow_cudnns_rnn_setting(tf32):
    """float32 at H=256 with tensor cores allowed: the grid forward in TF32 where cuDNN's
    RNNs may use TF32 (then within TF32's error of the per-step path), FFMA where not."""
    torch.manual_seed(61)
    model = gru_cuda.GRU(16, 256, bidirectional=True, device="cuda")
    x = torch.randn(7, 5, 16, device="cuda", requires_grad=True)
    lengths = [7, 2, 5, 7, 1]
    with precision.cudnn_rnn_tf32(tf32):
        got, expected, ran = _persistent_against_per_step(
            model, lambda m: _packed_fwd_bwd(m, x, lengths), persistent_kernels.set_mma, True)
    assert ran["forward"] == 1 and ran["grid_forward_mma"] == (1 if tf32 else 0)
    assert ran["grid_backward_mma"] == ran["grid_forward_mma"]
    for i, (a, b) in enumerate(zip(got, expected)):
        assert rel_err(a, b) < (1e-2 if tf32 else 1e-5), f"tensor {i}"


def test_persistent_path_refuses_a_layer_the_plan_does_not_take():
    """Even in require mode: such a layer runs per step, counted as refused."""
    torch.manual_seed(57)
    ours = gru_cuda.GRU(8, 200, device="cuda")  # W_hh too large for the local form
    theirs = nn.GRU(8, 200, device="cuda")
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(5, 200, 8, device="cuda", requires_grad=True)  # N > 128 rows
    hx = torch.randn(1, 200, 200, device="cuda", requires_grad=True)
    before = persistent_kernels.counts()
    with gru_cuda.persistent("require"):
        got = fwd_bwd(ours, x, hx)
    after = persistent_kernels.counts()
    assert after["forward"] == before["forward"] and after["backward"] == before["backward"]
    assert after["refused"] - before["refused"] == 2  # the forward and the backward
    assert after["fallback"] == before["fallback"]
    for i, (a, b) in enumerate(zip(got, fwd_bwd(theirs, x, hx))):
        assert rel_err(a, b) < 1e-4, f"tensor {i}"
