"""The persistent CUDA kernels, run on the CPU: tests/cpp/persistent_emulation.cpp compiles
their source (csrc/persistent/cuda/gru_persistent_kernels.cuh, gru_local_kernels.cuh,
gru_cluster_kernels.cuh) against an emulation of CUDA's threads, barriers and warp
shuffles, runs a layer's forward and backward the way the persistent runner launches
them, and this test compares every output with a float64 GRU: the output, h_n, the saved
workspace, and the gradients of gx, gh_n and hx. It checks the kernels' indexing (both
directions, packed batches, blocks owning fewer units, H not a multiple of 32, the 8, 16
and 32 chunk forms, the forward's 1, 2 and 4 rows a warp, a row's gate rows split among
warps, the backward's 2, 4, 8 and 16 unit forms; the local form's 1, 2, 4 and 8 rows a
block; the cluster form; the grid and cluster forms' passes on tensor cores, through an
emulation of mma.sync's fragments) and their ordering within a block and across the
grid's barriers as the OS interleaves the threads (a missing barrier may still pass by
chance); not the GPU's caches or speed. Shared memory starts as NaN in every type (a
value read before it is written shows). The emulator stops on a write past a block's
shared memory (guard values) and on a load of several values from an address not
aligned to them (a GPU faults). The grid form's blocks run 64 threads here (256 on a GPU;
the kernels read blockDim), which keeps the thread count down; the local form's run as
on a GPU."""
import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from gru_cuda import _C, persistent_kernels, precision

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    binary = tmp_path_factory.mktemp("emulation") / "persistent_emulation"
    torch_dir = os.path.dirname(torch.__file__)
    tests_cpp = os.path.join(ROOT, "tests", "cpp")
    # c10's half types are header-only today; linking libc10 (with torch's ABI) keeps the
    # build working should a torch move part of them into the library.
    abi = f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}"
    lib = os.path.join(torch_dir, "lib")
    subprocess.run(
        [compiler, "-std=c++20", "-O1", "-pthread", abi, "-I", os.path.join(tests_cpp, "emulation"),
         "-I", os.path.join(ROOT, "csrc"), "-I", os.path.join(torch_dir, "include"),
         os.path.join(tests_cpp, "persistent_emulation.cpp"),
         os.path.join(ROOT, "csrc", "persistent", "persistent_plan.cpp"), "-o", str(binary),
         "-L", lib, "-lc10", f"-Wl,-rpath,{lib}"],
        check=True)
    return binary


def reference(gx, w_hh, b_ih, b_hh, hx, batch_sizes):
    """Output, h_n and the saved blocks of a layer given its input projection gx, in
    float64 autograd; also the gh_n tensors of each step, for their gradients."""
    D, N, H = hx.shape
    offsets = np.cumsum([0] + batch_sizes[:-1]).tolist()
    T, rows = len(batch_sizes), sum(batch_sizes)
    out = torch.zeros(rows, D * H, dtype=torch.float64)
    saved = torch.zeros(rows, D, _C.SAVED_BLOCKS, H, dtype=torch.float64)
    gh_ns, h_n = [], []
    for d in range(D):
        h = hx[d]
        for i in range(T):
            t = i if d == 0 else T - 1 - i
            live, first = batch_sizes[t], offsets[t]
            h_prev = h[:live]
            gi = gx[first:first + live, d * 3 * H:(d + 1) * 3 * H] + b_ih[d]
            gh = h_prev @ w_hh[d].T + b_hh[d]
            gh_n = gh[:, 2 * H:]
            gh_n.retain_grad()
            gh_ns.append((first, live, d, gh_n))
            r = torch.sigmoid(gi[:, :H] + gh[:, :H])
            z = torch.sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = torch.tanh(gi[:, 2 * H:] + r * gh_n)
            h_new = (1 - z) * n + z * h_prev
            out = out.index_copy(0, torch.arange(first, first + live),
                                 torch.cat([out[first:first + live, :d * H], h_new,
                                            out[first:first + live, (d + 1) * H:]], 1))
            saved[first:first + live, d] = torch.stack([r, z, n, gh_n, h_prev], 1).detach()
            h = torch.cat([h_new, h[live:]])
        h_n.append(h)
    return out, torch.stack(h_n), saved.reshape(rows, -1), gh_ns


CASES = [  # T, N, H, D, SMs, lengths (None: padded)
    (5, 3, 16, 1, 4, None),
    (5, 3, 45, 2, 8, None),                       # the last block owns fewer units
    (7, 4, 45, 2, 8, [7, 5, 5, 2]),
    (6, 5, 70, 1, 5, [6, 6, 3, 2, 1]),
    (3, 9, 37, 2, 6, [3, 3, 3, 2, 2, 2, 1, 1, 1]),  # more rows than warps
    (3, 2, 300, 2, 40, [3, 1]),                   # 16 chunks
    (3, 2, 520, 1, 40, None),                     # 32 chunks
    (4, 3, 39, 1, 20, [4, 3, 1]),                 # 2 units a block (1 in the last)
    (4, 3, 60, 2, 18, None),                      # 7 units a block (4 in the last)
    (5, 1, 45, 2, 8, None),                       # one row: the warps split its gate rows
]
# The half types differ only in their loads, stores and rounding: a few cases suffice.
HALF_CASES = [CASES[1], CASES[2], CASES[5]]
# The forward's variants taking 2 or 4 batch rows a warp (H <= 256; 2 up to 512).
ROW_CASES = ([(CASES[i], rows) for i in (1, 2, 4) for rows in (2, 4)]
             + [(CASES[5], 2), (CASES[9], 4)])
# The local form (W_hh in one block: H up to 137 here); few SMs make a block take more
# rows: 1 (the first two), 2, 4 and 8, and H=128 as on a GPU; H % 4 == 0 (16, 64, 128)
# reads the state 4 values at a time.
LOCAL_CASES = [CASES[0], CASES[2], (4, 3, 45, 2, 4, [4, 2, 1]), CASES[4],
               (4, 9, 37, 2, 2, [4, 4, 3, 3, 2, 2, 2, 1, 1]), (3, 7, 64, 1, 2, None),
               (3, 5, 128, 2, 6, [3, 3, 2, 1, 1])]
LOCAL_HALF_CASES = [LOCAL_CASES[2], LOCAL_CASES[6]]
# The local form with W_hh in registers: 16 chunks (H <= 64; 1, 2 and 8 rows a block;
# H % 4 != 0 too) and 32 (H <= 128 with 1 or 2 rows; the backward's columns past 112 from
# shared memory, at H=115 and 128); H=128 at 4 rows keeps shared memory.
REGISTER_CASES = [LOCAL_CASES[0], LOCAL_CASES[2], LOCAL_CASES[4], LOCAL_CASES[5],
                  (4, 3, 101, 2, 6, [4, 2, 1]), (3, 4, 115, 1, 4, [3, 2, 2, 1]),
                  LOCAL_CASES[6], (3, 9, 128, 2, 6, None)]
# The grid form on tensor cores (half types, TF32; H % 16 == 0): 1 to 2 tiles of gate
# rows (some rows padding), 1 to 2 tiles of batch rows.
MMA_CASES = [(5, 3, 48, 2, 8, None), (7, 9, 64, 2, 16, [7, 5, 5, 2, 7, 1, 3, 6, 4]),
             (3, 2, 256, 1, 40, [3, 1])]
# The cluster form (SMs / 8 clusters of 8 at once, SMs / 16 of 16): a cluster per
# direction taking every row, or several taking 2; the last block owning fewer units, or
# none (H=25: 8 blocks of 4); one row (its gate rows split among the warps); 9 rows (2 and
# 4 rows a warp); H=256 (32 units a block);
# H=500 (16 chunks; clusters of 16, since a slice of 8 would not fit); 5 rows over 2
# clusters (the last one takes 2 of 3); 4 rows a cluster (the backward's 4-row items alone;
# 9 rows mix them with single rows). The backward with 2 units a lane (8 and 9 rows a
# cluster at H=200 and 256; at H=200 the last 64-unit slab holds 8 units).
CLUSTER_CASES = [(5, 3, 45, 2, 16, None), (7, 4, 45, 2, 32, [7, 5, 5, 2]),
                 (4, 3, 25, 1, 8, [4, 3, 1]), (5, 1, 45, 2, 16, None),
                 (3, 9, 37, 1, 8, [3, 3, 3, 2, 2, 2, 1, 1, 1]), (3, 2, 256, 1, 8, [3, 1]),
                 (3, 2, 500, 1, 16, [3, 1]), (4, 5, 45, 1, 16, [4, 4, 3, 2, 1]),
                 (3, 8, 64, 1, 16, None), (3, 9, 256, 1, 8, [3, 3, 3, 3, 3, 2, 2, 1, 1]),
                 (4, 8, 200, 2, 16, None)]
CLUSTER_ROW_CASES = [(CLUSTER_CASES[4], 2), (CLUSTER_CASES[4], 4), (CLUSTER_CASES[6], 2)]
# The cluster form on tensor cores (H % 16 == 0): the forward's 2 gate-row tiles (some
# rows padding) and 1 to 3 tiles of batch rows (3, 5 and 17 rows a cluster), both
# directions, packed; 6 gate-row tiles over H=256 (a k step count that is even, at H=48
# odd). The backward's K, 3k gate rows, padded to 16 (18 at H=48, 12 at H=32). H=512:
# clusters of 8 for the half types (their slices fit at half the bytes), 16 for TF32.
CLUSTER_MMA_CASES = [(5, 3, 48, 2, 16, None), (7, 9, 64, 1, 16, [7, 5, 5, 2, 7, 1, 3, 6, 4]),
                     (4, 17, 32, 2, 16, [4] * 9 + [3] * 5 + [1] * 3), (3, 2, 256, 1, 8, [3, 1]),
                     (3, 2, 512, 1, 16, [3, 1])]
HALF_TYPES = (torch.bfloat16, torch.float16)
MMA_TYPES = HALF_TYPES + (torch.float32,)  # float32 as TF32

# (case, dtype, rows a warp, local form allowed, tensor cores allowed, W_hh in registers
# allowed, cluster form allowed)
PARAMS = ([(*case, torch.float32, 1, False, False, False, False) for case in CASES]
          + [(*case, dtype, 1, False, False, False, False) for case in HALF_CASES
             for dtype in HALF_TYPES]
          + [(*case, torch.float32, rows, False, False, False, False)
             for case, rows in ROW_CASES]
          + [(*case, torch.float32, 1, True, False, False, False) for case in LOCAL_CASES]
          + [(*case, dtype, 1, True, False, False, False) for case in LOCAL_HALF_CASES
             for dtype in HALF_TYPES]
          + [(*case, torch.float32, 1, True, False, True, False) for case in REGISTER_CASES]
          + [(*case, dtype, 1, True, False, True, False) for case, dtype in
             [(REGISTER_CASES[1], torch.bfloat16), (LOCAL_CASES[6], torch.bfloat16),
              (LOCAL_CASES[6], torch.float16)]]
          + [(*case, dtype, 1, False, True, False, False) for case in MMA_CASES
             for dtype in MMA_TYPES]
          + [(*case, torch.float32, 1, False, False, False, True) for case in CLUSTER_CASES]
          + [(*case, torch.float32, rows, False, False, False, True)
             for case, rows in CLUSTER_ROW_CASES]
          + [(*case, dtype, 1, False, False, False, True) for case in CLUSTER_CASES[1::5]
             for dtype in HALF_TYPES]
          + [(*case, dtype, 1, False, True, False, True) for case in CLUSTER_MMA_CASES
             for dtype in MMA_TYPES])


def case_id(p):
    T, N, H, D, sms, lengths, dtype, rows, local, mma, registers, cluster = p
    cluster_form = f"cluster-{'mma' if mma else f'rows{rows}'}"
    form = ("local-registers" if registers else "local") if local else \
        cluster_form if cluster else "mma" if mma else f"rows{rows}"
    return (f"T{T}-N{N}-H{H}-D{D}-{'packed' if lengths else 'padded'}-"
            f"{str(dtype).split('.')[-1]}-{form}")


@pytest.mark.parametrize("T,N,H,D,sms,lengths,dtype,rows_per_warp,local,mma,registers,cluster",
                         PARAMS, ids=[case_id(p) for p in PARAMS])
def test_persistent_kernels_in_emulation_match_a_float64_gru(emulator, tmp_path, T, N, H, D, sms,
                                                            lengths, dtype, rows_per_warp, local,
                                                            mma, registers, cluster):
    gen = torch.Generator().manual_seed(T * 1000 + H)
    batch_sizes = [N] * T if lengths is None else \
        [sum(1 for length in lengths if length > t) for t in range(T)]
    rows = sum(batch_sizes)

    def rand(*shape, scale=0.5):  # values the layer's dtype holds exactly
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).to(dtype).double()

    gx, b_ih, b_hh = rand(rows, D * 3 * H), rand(D, 3 * H), rand(D, 3 * H)
    w_hh, hx = rand(D, 3 * H, H, scale=1 / H ** 0.5), rand(D, N, H)
    grad_out, grad_hn = rand(rows, D * H), rand(D, N, H)
    case = tmp_path / "case.bin"
    with open(case, "wb") as f:
        f.write(np.array([T, N, H, D, sms, DTYPES[dtype], int(lengths is not None),
                          rows_per_warp, int(local), int(mma), int(registers), int(cluster)],
                         np.int64).tobytes())
        f.write(np.array(batch_sizes, np.int64).tobytes())
        for t in (gx, w_hh, b_ih, b_hh, hx, grad_out, grad_hn):
            f.write(t.float().numpy().tobytes())
    result = tmp_path / "out.bin"
    run = subprocess.run([str(emulator), str(case), str(result)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr

    gx.requires_grad_()
    hx.requires_grad_()
    out, h_n, saved, gh_ns = reference(gx, w_hh, b_ih, b_hh, hx, batch_sizes)
    ((out * grad_out).sum() + (h_n * grad_hn).sum()).backward()
    dgh_n = torch.zeros(rows, D * H, dtype=torch.float64)
    for first, live, d, gh_n in gh_ns:
        dgh_n[first:first + live, d * H:(d + 1) * H] = gh_n.grad
    expected = {"output": out, "h_n": h_n, "saved": saved, "dgx": gx.grad, "dgh_n": dgh_n,
                "grad_hx": hx.grad, "inference output": out, "inference h_n": h_n}
    got = np.fromfile(result, np.float32)
    tolerance = (1e-4 if not mma else 3e-3) if dtype == torch.float32 else 3e-2  # TF32
    start = 0
    for name, e in expected.items():
        a = torch.from_numpy(got[start:start + e.numel()].astype(np.float64)).reshape(e.shape)
        start += e.numel()
        assert not a.isnan().any(), f"{name}: elements the kernels never wrote"
        error = ((a - e).abs().max() / e.abs().max()).item()
        assert error < tolerance, f"{name}: max error {error:.2e} of the largest element"
    assert start == got.size

    # The instantiations the launcher's choosers picked, against the rule stated here.
    with precision.cudnn_rnn_tf32(True):  # the emulation's float32 tensor cores are TF32
        plan = persistent_kernels.plan(H, N, D, dtype, sm_count=sms, smem_per_block=232448,
                                       local=local, rows_per_warp=rows_per_warp, mma=mma,
                                       registers=registers, cluster=cluster)
    assert plan["form"] == ("local" if local else "cluster" if cluster else "grid")
    if cluster:
        # the smallest whose slices fit here (half types on tensor cores: half the bytes)
        size = 8 if H <= 256 or (mma and dtype != torch.float32) else 16
        at_once = sms // size // D
        rows = -(-N // at_once)
        assert plan["cluster_size"] == size and plan["rows_per_block"] == rows
        assert plan["units_per_block"] == -(-H // size)
        assert plan["grid"] == D * size * -(-N // rows)
        assert plan["mma"] == int(mma)
        chunks = 8 if H <= 256 else 16
        warp_rows = min(rows_per_warp, 32 // chunks)
        forward = f"forward cluster {size} rows {rows} " + \
            ("mma" if mma else f"chunks {chunks} warp rows {warp_rows}")
        lane_units = 2 if (rows // 4) * -(-H // 64) >= 8 else 1
        expected_forms = [forward, "backward cluster mma" if mma else
                          f"backward cluster lane units {lane_units}"]
    elif local:
        rows = next(r for r in (1, 2, 4, 8) if -(-N // r) * D <= sms or r == 8)
        assert plan["rows_per_block"] == rows
        chunks = (16 if H <= 64 else 32 if H <= 128 and rows <= 2 else 0) if registers else 0
        assert plan["register_chunks"] == chunks
        forward = f"forward local rows {rows}" + (f" registers {chunks}" if chunks else "")
        backward_chunks = 28 if chunks == 32 else chunks  # its last columns in shared memory
        backward = f"backward local rows {rows}" + \
            (f" registers {backward_chunks}" if chunks else "")
        expected_forms = [forward, backward]
    else:
        chunks = 8 if H <= 256 else 16 if H <= 512 else 32
        units = plan["units_per_block"]
        assert plan["mma"] == int(mma)
        assert plan["rows_per_warp"] == (0 if mma else min(rows_per_warp, 32 // chunks))
        forward = "forward mma" if mma else f"forward chunks {chunks} rows {plan['rows_per_warp']}"
        backward = ("backward mma" if mma else
                    f"backward units {max(2, 1 << (units - 1).bit_length())}")
        expected_forms = [forward, backward]
    assert run.stdout.split("\n")[:2] == expected_forms
