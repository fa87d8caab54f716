"""A small forward+backward over every kernel path for compute-sanitizer to watch: the
per-step and the persistent kernels (in require mode, counted), the per-step loops
replayed from graphs (captured at every first call, counted), the per-step path's GEMMs
on cuBLAS directly (counted), the grid form on tensor cores (half types and TF32,
counted), the local form with W_hh in registers and the cluster form on a Hopper card,
also on tensor cores and with 2 units a lane in the backward (counted); float32 and
bfloat16, one and two directions, padded and packed, training and inference; the
persistent kernels' local form (H=37) and the grid form's large ones (H=512
bidirectional, H=1024: 16 and 32 chunks, shared memory past 48 KB). Exits non-zero if a
path did not run every layer it should, or a loop ran eagerly under replay."""
import torch

import gru_cuda
from gru_cuda import direct_blas, graph_replay, persistent_kernels, precision
from gru_cuda._switches import mode_within

# (input size, hidden size, layers, bidirectional, batch, steps)
CASES = [(13, 37, 2, True, 5, 9), (16, 512, 1, True, 3, 4), (16, 1024, 1, False, 2, 3)]
CALLS = {"forward": 3, "backward": 2}  # per layer: padded, packed, inference; two trained


def run_all(cases=CASES):
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        for I, H, layers, bidirectional, N, T in cases:
            model = gru_cuda.GRU(I, H, num_layers=layers, bidirectional=bidirectional,
                                 device="cuda", dtype=dtype)
            x = torch.randn(T, N, I, device="cuda", dtype=dtype, requires_grad=True)
            out, h_n = model(x)
            (out.float().sum() + h_n.float().sum()).backward()
            lengths = torch.randint(1, T + 1, (N,))
            lengths[0] = T
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
            out, h_n = model(packed)
            (out.data.float().sum() + h_n.float().sum()).backward()
            with torch.no_grad():
                model(packed)


def main():
    run_all()
    before = persistent_kernels.counts()
    with gru_cuda.persistent("require"):
        run_all()
    torch.cuda.synchronize()
    after = persistent_kernels.counts()
    layers = 2 * sum(case[2] for case in CASES)  # two dtypes
    local = 2 * sum(case[2] for case in CASES if case[1] <= 128)  # W_hh in one block
    expected = {"forward": CALLS["forward"] * layers, "backward": CALLS["backward"] * layers,
                "refused": 0, "fallback": 0, "local_forward": CALLS["forward"] * local,
                "local_backward": CALLS["backward"] * local, "local_forward_registers": 0,
                "local_backward_registers": 0, "cluster_forward": 0, "cluster_backward": 0}
    ran = {k: after[k] - before[k] for k in expected}  # the grid form's by rows a warp aside
    print("sanitizer case: persistent kernels ran:", ran, "expected:", expected)
    if ran != expected:
        raise SystemExit("sanitizer case: the persistent kernels did not run every layer")

    before = persistent_kernels.counts()
    with mode_within(persistent_kernels.set_mma, True), \
            mode_within(persistent_kernels.set_registers, True), \
            gru_cuda.persistent("require"), precision.cudnn_rnn_tf32(True):  # float32 too
        run_all()
    torch.cuda.synchronize()
    after = persistent_kernels.counts()
    names = ("grid_forward_mma", "grid_backward_mma", "local_forward_registers",
             "local_backward_registers")
    ran = [after[k] - before[k] for k in names]
    # The grid form's layers (H past the local form), both dtypes; the local form's
    # (H=37, a batch row a block) keep W_hh in registers.
    mma_layers = 2 * sum(case[2] for case in CASES if case[1] > 137 and case[1] % 16 == 0)
    expected = [CALLS["forward"] * mma_layers, CALLS["backward"] * mma_layers,
                CALLS["forward"] * local, CALLS["backward"] * local]
    print("sanitizer case: forwards, backwards on tensor cores, local forwards, backwards "
          "with W_hh in registers:", ran, "expected:", expected)
    if ran != expected:
        raise SystemExit("sanitizer case: the tensor-core or register passes did not run "
                         "every layer")

    if torch.cuda.get_device_capability()[0] >= 9:  # clusters: Hopper on
        before = persistent_kernels.counts()
        with mode_within(persistent_kernels.set_cluster, True), gru_cuda.persistent("require"):
            run_all()
        torch.cuda.synchronize()
        after = persistent_kernels.counts()
        ran = [after[k] - before[k] for k in ("cluster_forward", "cluster_backward")]
        # H=512 (clusters of 16 at these few rows); H=37 stays local, H=1024 on the grid.
        cluster_cases = [case for case in CASES if 137 < case[1] <= 512]
        cluster_layers = 2 * sum(case[2] for case in cluster_cases)
        expected = [CALLS["forward"] * cluster_layers, CALLS["backward"] * cluster_layers]
        print("sanitizer case: forwards, backwards in clusters:", ran, "expected:", expected)
        if ran != expected:
            raise SystemExit("sanitizer case: the cluster form did not run every layer")

        before = persistent_kernels.counts()
        with mode_within(persistent_kernels.set_cluster, True), \
                mode_within(persistent_kernels.set_mma, True), \
                gru_cuda.persistent("require"), precision.cudnn_rnn_tf32(True):
            run_all(cluster_cases)
        torch.cuda.synchronize()
        after = persistent_kernels.counts()
        ran = [after[k] - before[k] for k in ("cluster_forward_mma", "cluster_backward_mma")]
        print("sanitizer case: cluster forwards, backwards on tensor cores:", ran,
              "expected:", expected)
        if ran != expected:
            raise SystemExit("sanitizer case: the cluster form on tensor cores did not run "
                             "every layer")

    before = graph_replay.counts()
    with gru_cuda.replay("always"):
        run_all()  # captured, then replayed
        run_all()  # new weights: replayed where the allocator gave the same addresses
    torch.cuda.synchronize()
    after = graph_replay.counts()
    ran = {k: after[k] - before[k] for k in ("hits", "misses", "captures")}
    loops = 2 * (CALLS["forward"] + CALLS["backward"]) * layers  # two passes
    print("sanitizer case: replayed loops:", ran, "expected: every miss captured,",
          loops, "captured or replayed")
    if ran["misses"] != ran["captures"] or ran["hits"] + ran["captures"] != loops:
        raise SystemExit("sanitizer case: a loop ran eagerly under replay")

    before = direct_blas.counts()
    with gru_cuda.direct_gemm():
        run_all()
    torch.cuda.synchronize()
    after = direct_blas.counts()
    ran = {k: after[k] - before[k] for k in after}
    print("sanitizer case: direct GEMMs:", ran, "expected: some, none declined")
    if ran["gemms"] == 0 or ran["declined"] != 0:
        raise SystemExit("sanitizer case: the GEMMs did not all run on cuBLAS directly")

    if torch.cuda.get_device_capability()[0] >= 9:
        # Last, the slowest under racecheck: 16 rows over at most 4 clusters of 16 a
        # direction, so the cluster backward takes 2 units a lane.
        before = persistent_kernels.counts()
        with mode_within(persistent_kernels.set_cluster, True), gru_cuda.persistent("require"):
            run_all([(16, 512, 1, True, 16, 3)])
        torch.cuda.synchronize()
        ran = persistent_kernels.counts()["cluster_backward_lane_units_2"] - \
            before["cluster_backward_lane_units_2"]
        print("sanitizer case: cluster backwards with 2 units a lane:", ran,
              "expected:", 2 * CALLS["backward"])
        if ran != 2 * CALLS["backward"]:
            raise SystemExit("sanitizer case: the cluster backward with 2 units a lane did "
                             "not run")

if __name__ == "__main__":
    main()
