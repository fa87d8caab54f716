// Fused elementwise passes of one GRU step on the CPU: one pass over both directions'
// live rows, split across threads; the element math comes from gru_cell.h.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/ops/empty.h>

#include "../gru_layer.h"
#include "../replay/replay_switch.h"
#include "half_matmul_cpu.h"
#include "small_matmul_cpu.h"
#include "target_clones.h"

namespace gru_cuda {
namespace {

// Vectorized, an element costs a few ns: about 4096 per task keeps the thread hand-off
// (a few us) small while still splitting a 64 x 256 step across cores.
int64_t rows_per_task(int64_t H) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(H, 1)); }

// Rows [begin, end) of a step: the row's pointers once, then its units, vectorized.
template <typename scalar_t, typename Pass>
GRU_CPU_CLONES void run_rows(const typename Pass::StepType& step, int64_t begin, int64_t end) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t H = step.H;
  for (int64_t r = begin; r < end; ++r) {
    const auto row = Pass::template row<scalar_t>(step, r);
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) Pass::template element<acc_t>(row, j, H);
  }
}

// Both directions side by side, one thread each, GEMM and elementwise pass together:
// one parallel region per step instead of three, and the small GEMMs of a step scale
// poorly over threads anyway. Only where the step is small and there are spare threads.
template <typename S>
bool directions_side_by_side(const S& step) {
  constexpr int64_t kSmallStep = 64 * 256;  // live rows x H per direction
  return step.num_directions == 2 && at::get_num_threads() >= 2 && !at::in_parallel_region() &&
         std::max(step.dir[0].rows, step.dir[1].rows) * step.H <= kSmallStep;
}

// fn(d) for d = 0, 1 on a thread each, with the caller's thread-local state (the GEMMs
// run below autograd, as on the calling thread).
template <typename Fn>
void on_a_thread_per_direction(const Fn& fn) {
  const at::ThreadLocalState caller;
  at::parallel_for(0, 2, 1, [&](int64_t d_begin, int64_t d_end) {
    const at::ThreadLocalStateGuard same_state(caller);
    for (int64_t d = d_begin; d < d_end; ++d) fn(d);
  });
}

// kSave: whether to keep the workspace for the backward (not in inference).
template <typename scalar_t>
void forward_rows(const ForwardStep& step, int64_t begin, int64_t end) {
  if (step.save) {
    run_rows<scalar_t, ForwardPass<true>>(step, begin, end);
  } else {
    run_rows<scalar_t, ForwardPass<false>>(step, begin, end);
  }
}

void forward_step_cpu(const ForwardStep& step, StepGemms gemms) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, step.dtype, "gru_forward_cpu", [&] {
    if (directions_side_by_side(step)) {
      on_a_thread_per_direction([&](int64_t d) {
        gemms(d, d + 1);
        forward_rows<scalar_t>(step, step.first_row(d), step.end_row(d));
      });
      return;
    }
    gemms(0, step.num_directions);
    const int64_t rows = step.total_rows();
    if (rows == 0 || step.H == 0) return;
    at::parallel_for(0, rows, rows_per_task(step.H), [&](int64_t begin, int64_t end) {
      forward_rows<scalar_t>(step, begin, end);
    });
  });
}

void backward_step_cpu(const BackwardStep& step, StepGemms gemms) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, step.dtype, "gru_backward_cpu", [&] {
    if (directions_side_by_side(step)) {
      on_a_thread_per_direction([&](int64_t d) {
        run_rows<scalar_t, BackwardPass>(step, step.first_row(d), step.end_row(d));
        gemms(d, d + 1);
      });
      return;
    }
    const int64_t rows = step.total_rows();
    if (rows > 0 && step.H > 0) {
      at::parallel_for(0, rows, rows_per_task(step.H), [&](int64_t begin, int64_t end) {
        run_rows<scalar_t, BackwardPass>(step, begin, end);
      });
    }
    gemms(0, step.num_directions);
  });
}

// The CPU has no graphs to replay. Under the replay switch it runs the loop through the
// addressing that replayed graphs use (offsets, plus the call's addresses read per row),
// so that CPU builds test that addressing; never in auto mode, which measured GPUs only.
bool replay_addressing_cpu(const StepLoop& loop) {
  const ReplayMode mode = replay_switch().get();
  if (mode != ReplayMode::kOn && mode != ReplayMode::kAlways) return false;
  const at::Tensor workspace = at::empty({loop.D, loop.N, 3 * loop.H}, loop.state.options());
  loop.run(loop.state, workspace, &loop.addresses);
  replay_cpu_runs()++;
  return true;
}

}  // namespace

const StepKernels cpu_step_kernels = {forward_step_cpu,
                                      backward_step_cpu,
                                      /*layer_forward=*/nullptr,
                                      /*layer_backward=*/nullptr,
                                      small_matmul_cpu,
                                      replay_addressing_cpu,
                                      half_matmul_cpu,
                                      half_recurrent_gemms_cpu};

}  // namespace gru_cuda
