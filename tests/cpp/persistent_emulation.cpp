// The persistent layer kernels (csrc/persistent/cuda/gru_persistent_kernels.cuh) run on
// the CPU through cuda_emulation.h, so that CPU builds check their indexing, packed
// batches, directions and block-level ordering. Built and fed by
// tests/test_persistent_emulation.py:
//   persistent_emulation CASE_FILE OUT_FILE
// CASE_FILE: int64 T, N, H, D, SM count, dtype (0 float32, 1 bfloat16, 2 float16), packed,
// rows per warp of the grid form's forward product, local form allowed, tensor cores
// allowed (float32: as TF32), the local forward's W_hh in registers allowed, the cluster
// form allowed (with SM count / 8 and / 16 clusters of 8 and 16 at once); int64
// batch_sizes[T]; then float32 gx (rows,
// D*3H), w_hh (D, 3H, H), b_ih (D, 3H), b_hh (D, 3H), hx (D, N, H), grad_out (rows, D*H),
// grad_hn (D, N, H).
// OUT_FILE: float32 output, h_n, saved, dgx, dgh_n, grad_hx, then the inference forward's
// output and h_n. Outputs start as NaN. Prints the instantiations that ran.
#include "emulation/cuda_emulation.h"
#include "persistent/cuda/gru_cluster_kernels.cuh"
#include "persistent/cuda/gru_local_kernels.cuh"
#include "persistent/cuda/gru_persistent_kernels.cuh"

#include <cstdio>
#include <fstream>

using namespace gru_cuda;
using persistent_kernels::with_backward_kernel;
using persistent_kernels::with_cluster_backward_kernel;
using persistent_kernels::with_cluster_forward_kernel;
using persistent_kernels::with_forward_kernel;
using persistent_kernels::with_local_backward_kernel;
using persistent_kernels::with_local_forward_kernel;

namespace {

std::vector<float> read_floats(std::ifstream& in, int64_t n) {
  std::vector<float> v(n);
  in.read(reinterpret_cast<char*>(v.data()), n * static_cast<int64_t>(sizeof(float)));
  return v;
}

template <typename S>
std::vector<S> to(const std::vector<float>& v) {
  return std::vector<S>(v.begin(), v.end());
}

template <typename S>
void write_floats(std::ofstream& out, const std::vector<S>& v) {
  const std::vector<float> f(v.begin(), v.end());
  out.write(reinterpret_cast<const char*>(f.data()), f.size() * sizeof(float));
}

template <typename S>
std::vector<S> poisoned(int64_t n) {
  return std::vector<S>(n, S(std::nanf("")));
}

// The forward kernel the runner would launch for the plan, run on args; prints its form
// when `say`.
template <typename S, bool kSave>
void emulate_forward(const PersistentPlan& plan, const PersistentForwardArgs& args, bool say) {
  if (plan.form == PersistentForm::kCluster) {
    with_cluster_forward_kernel<S, kSave>(args.shape.H, args.shape.rows_per_warp,
                                          args.shape.mma != 0,
                                          [&](auto kernel, int chunks, int rows) {
      if (say && chunks == 0) {
        std::printf("forward cluster %d rows %d mma\n", static_cast<int>(plan.cluster_size),
                    static_cast<int>(plan.rows_per_block));
      } else if (say) {
        std::printf("forward cluster %d rows %d chunks %d warp rows %d\n",
                    static_cast<int>(plan.cluster_size), static_cast<int>(plan.rows_per_block),
                    chunks, rows);
      }
      emulated_launch(plan.grid, plan.smem_forward, [&] { kernel(args); }, plan.cluster_size);
      return 0;
    });
    return;
  }
  if (plan.form == PersistentForm::kLocal) {
    with_local_forward_kernel<S, kSave>(plan.rows_per_block, plan.register_chunks,
                                        [&](auto kernel, int rows, int chunks) {
      if (say && chunks == 0) std::printf("forward local rows %d\n", rows);
      if (say && chunks != 0) std::printf("forward local rows %d registers %d\n", rows, chunks);
      emulated_launch(plan.grid, plan.smem_forward, [&] { kernel(args); });
      return 0;
    });
    return;
  }
  with_forward_kernel<S, kSave>(args.shape.H, args.shape.rows_per_warp, args.shape.mma != 0,
                                [&](auto kernel, int chunks, int rows) {
    if (say && chunks == 0) std::printf("forward mma\n");
    if (say && chunks != 0) std::printf("forward chunks %d rows %d\n", chunks, rows);
    emulated_launch(plan.grid, plan.smem_forward, [&] { kernel(args); });
    return 0;
  });
}

template <typename S>
void emulate_backward(const PersistentPlan& plan, const PersistentBackwardArgs& args) {
  if (plan.form == PersistentForm::kCluster) {
    with_cluster_backward_kernel<S>(args.shape.H, plan.rows_per_block, plan.mma != 0,
                                    [&](auto kernel, int lane_units) {
      if (lane_units == 0) std::printf("backward cluster mma\n");
      if (lane_units != 0) std::printf("backward cluster lane units %d\n", lane_units);
      emulated_launch(plan.grid, plan.smem_backward, [&] { kernel(args); }, plan.cluster_size);
      return 0;
    });
    return;
  }
  if (plan.form == PersistentForm::kLocal) {
    with_local_backward_kernel<S>(plan.rows_per_block, plan.register_chunks,
                                  [&](auto kernel, int rows, int chunks) {
      if (chunks == 0) std::printf("backward local rows %d\n", rows);
      if (chunks != 0) std::printf("backward local rows %d registers %d\n", rows, chunks);
      emulated_launch(plan.grid, plan.smem_backward, [&] { kernel(args); });
      return 0;
    });
    return;
  }
  with_backward_kernel<S>(plan.units_per_block, plan.mma != 0, [&](auto kernel, int units) {
    if (units == 0) std::printf("backward mma\n");
    if (units != 0) std::printf("backward units %d\n", units);
    emulated_launch(plan.grid, plan.smem_backward, [&] { kernel(args); });
    return 0;
  });
}

template <typename S>
int run(const int64_t* head, const std::vector<int64_t>& batch_sizes, std::ifstream& in,
        const char* out_path) {
  const int64_t T = head[0], N = head[1], H = head[2], D = head[3], sms = head[4];
  const bool packed = head[6] != 0;
  const int64_t rows_per_warp = head[7];
  const bool allow_local = head[8] != 0, allow_mma = head[9] != 0, registers = head[10] != 0;
  const bool allow_cluster = head[11] != 0;
  std::vector<int64_t> steps(batch_sizes);  // batch sizes, then each step's first row
  int64_t rows = 0;
  for (const int64_t n : batch_sizes) {
    steps.push_back(rows);
    rows += n;
  }
  DeviceLimits limits{sms, 232448};
  if (allow_cluster) limits.clusters[0] = sms / 8, limits.clusters[1] = sms / 16;
  const PersistentPlan plan = plan_persistent(H, N, D, false, limits, allow_local,
                                              rows_per_warp, allow_mma ? sizeof(S) : 0,
                                              registers, sizeof(S));
  const bool local = plan.form == PersistentForm::kLocal;
  const bool cluster = plan.form == PersistentForm::kCluster;
  blockDim.x = local ? static_cast<unsigned>(plan.threads) : 64;
  if (!plan.eligible()) {
    std::fprintf(stderr, "the plan refuses the case: %d\n", static_cast<int>(plan.refusal));
    return 2;
  }
  const auto gx = to<S>(read_floats(in, rows * D * 3 * H));
  const auto w_hh = to<S>(read_floats(in, D * 3 * H * H));
  const auto b_ih = to<S>(read_floats(in, D * 3 * H));
  const auto b_hh = to<S>(read_floats(in, D * 3 * H));
  const auto hx = to<S>(read_floats(in, D * N * H));
  const auto grad_out = to<S>(read_floats(in, rows * D * H));
  auto dh = to<S>(read_floats(in, D * N * H));

  auto h_buf = poisoned<S>(2 * D * N * H);
  std::copy(hx.begin(), hx.end(), h_buf.begin());
  const std::vector<S> h_buf_start(h_buf);
  auto out = poisoned<S>(rows * D * H);
  auto saved = poisoned<S>(rows * D * kSavedBlocks * H);
  PersistentForwardArgs fwd{};
  fwd.shape = {T, N, H, D, plan.units_per_block, plan.blocks_per_direction, plan.smem_forward,
               packed ? steps.data() : nullptr, packed ? steps.data() + T : nullptr,
               plan.rows_per_warp, local || cluster ? plan.rows_per_block : 0, plan.mma,
               plan.threads, plan.register_chunks, plan.cluster_size};
  fwd.gx = gx.data();
  for (int64_t d = 0; d < D; ++d) {
    fwd.w_hh[d] = w_hh.data() + d * 3 * H * H;
    fwd.b_ih[d] = b_ih.data() + d * 3 * H;
    fwd.b_hh[d] = b_hh.data() + d * 3 * H;
  }
  const auto h_n_of = [&](const std::vector<S>& buffer) {  // where step T left the state
    const auto first = buffer.begin() + (T % 2) * D * N * H;
    return std::vector<S>(first, first + D * N * H);
  };

  // Inference first: no saved workspace (the kernel built without it), its own buffers.
  auto inference_h_buf = h_buf_start;
  auto inference_out = poisoned<S>(rows * D * H);
  PersistentForwardArgs inference = fwd;
  inference.h_buf = inference_h_buf.data();
  inference.out = inference_out.data();
  inference.saved = nullptr;
  emulate_forward<S, false>(plan, inference, false);

  fwd.h_buf = h_buf.data();
  fwd.out = out.data();
  fwd.saved = saved.data();
  emulate_forward<S, true>(plan, fwd, true);
  const std::vector<S> h_n = h_n_of(h_buf);

  auto dgx = poisoned<S>(rows * D * 3 * H);
  auto dgh_n = poisoned<S>(rows * D * H);
  auto dgh_buf = poisoned<S>(local || cluster ? 0 : 2 * D * N * 3 * H);
  PersistentBackwardArgs bwd{};
  bwd.shape = fwd.shape;
  bwd.shape.smem_bytes = plan.smem_backward;
  bwd.grad_out = grad_out.data();
  bwd.saved = saved.data();
  for (int64_t d = 0; d < D; ++d) bwd.w_hh[d] = w_hh.data() + d * 3 * H * H;
  bwd.dh = dh.data();
  bwd.dgx = dgx.data();
  bwd.dgh_n = dgh_n.data();
  bwd.dgh_buf = local || cluster ? nullptr : dgh_buf.data();
  emulate_backward<S>(plan, bwd);

  std::ofstream result(out_path, std::ios::binary);
  write_floats(result, out);
  write_floats(result, h_n);
  write_floats(result, saved);
  write_floats(result, dgx);
  write_floats(result, dgh_n);
  write_floats(result, dh);
  write_floats(result, inference_out);
  write_floats(result, h_n_of(inference_h_buf));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: persistent_emulation CASE_FILE OUT_FILE\n");
    return 2;
  }
  std::ifstream in(argv[1], std::ios::binary);
  int64_t head[12];
  in.read(reinterpret_cast<char*>(head), sizeof(head));
  std::vector<int64_t> batch_sizes(head[0]);
  in.read(reinterpret_cast<char*>(batch_sizes.data()), head[0] * sizeof(int64_t));
  switch (head[5]) {
    case 0:
      return run<float>(head, batch_sizes, in, argv[2]);
    case 1:
      return run<c10::BFloat16>(head, batch_sizes, in, argv[2]);
    default:
      return run<c10::Half>(head, batch_sizes, in, argv[2]);
  }
}
