// Fused elementwise passes of one GRU step on the CPU: one pass over the (N, H)
// state per step, rows split across threads.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include "../gru_cell.h"
#include "../gru_layer.h"

// The row loops are compiled for AVX-512, AVX2 and baseline x86-64 and the loader
// picks the widest the CPU has, so one binary is both portable and vectorized.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define GRU_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define GRU_CPU_CLONES
#endif

namespace gru_cuda {
namespace {

// Vectorized, an element costs a few ns: about 4096 per task keeps the thread hand-off
// (a few us) small while still splitting a 64 x 256 step across cores.
int64_t rows_per_task(int64_t H) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(H, 1)); }

// kSave: whether to keep [r, z, n, gh_n, h_prev] for the backward (not in inference).
template <typename scalar_t, bool kSave>
GRU_CPU_CLONES void forward_rows(const scalar_t* gx, const scalar_t* gh, const scalar_t* b_hh,
                                 scalar_t* h, scalar_t* out, scalar_t* saved,
                                 const int64_t* lengths, int64_t t, int64_t H,
                                 int64_t row_begin, int64_t row_end) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const scalar_t* gx_row = gx + row * 3 * H;
    const scalar_t* gh_row = gh + row * 3 * H;
    scalar_t* h_row = h + row * H;
    scalar_t* out_row = out + row * H;
    scalar_t* s = kSave ? saved + row * kSavedBlocks * H : nullptr;
    if (lengths != nullptr && t >= lengths[row]) {
      std::fill(out_row, out_row + H, scalar_t(0));
      if (kSave) {
        for (int64_t j = 0; j < H; ++j) {
          save_gates(s, j, H, acc_t(0), acc_t(0), acc_t(0), scalar_t(0), h_row[j]);
        }
      }
      continue;
    }
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const acc_t gh_n = acc_t(gh_row[2 * H + j]) + acc_t(b_hh[2 * H + j]);
      const GateValues<acc_t> g = gru_cell_forward<acc_t>(
          gx_row[j], gx_row[H + j], gx_row[2 * H + j], acc_t(gh_row[j]) + acc_t(b_hh[j]),
          acc_t(gh_row[H + j]) + acc_t(b_hh[H + j]), gh_n, h_row[j]);
      if (kSave) save_gates(s, j, H, g.r, g.z, g.n, scalar_t(gh_n), h_row[j]);
      h_row[j] = g.h_new;
      out_row[j] = h_row[j];
    }
  }
}

template <typename scalar_t>
GRU_CPU_CLONES void backward_rows(const scalar_t* grad_out, scalar_t* dh,
                                  const scalar_t* saved, scalar_t* dgx, scalar_t* dgh,
                                  scalar_t* dgh_n, const int64_t* lengths, int64_t t, int64_t H,
                                  int64_t row_begin, int64_t row_end) {
  using acc_t = at::opmath_type<scalar_t>;
  for (int64_t row = row_begin; row < row_end; ++row) {
    scalar_t* dgx_row = dgx + row * 3 * H;
    scalar_t* dgh_row = dgh + row * 3 * H;
    scalar_t* dgh_n_row = dgh_n + row * H;
    if (lengths != nullptr && t >= lengths[row]) {
      // Padding: no gradient enters, the carried one passes through unchanged.
      std::fill(dgx_row, dgx_row + 3 * H, scalar_t(0));
      std::fill(dgh_row, dgh_row + 3 * H, scalar_t(0));
      std::fill(dgh_n_row, dgh_n_row + H, scalar_t(0));
      continue;
    }
    const scalar_t* go_row = grad_out + row * H;
    scalar_t* dh_row = dh + row * H;
    const scalar_t* s = saved + row * kSavedBlocks * H;
#pragma omp simd
    for (int64_t j = 0; j < H; ++j) {
      const acc_t dh_new = acc_t(go_row[j]) + acc_t(dh_row[j]);
      const GateGrads<acc_t> g = gru_cell_backward_saved(dh_new, s, j, H);
      store_gate_grads(dgx_row, dgh_row, dgh_n_row, j, H, g.dgx_r, g.dgx_z, g.dgx_n, g.dgh_n);
      dh_row[j] = g.dh_direct;
    }
  }
}

void forward_step_cpu(const at::Tensor& gx_t, const at::Tensor& gh, const at::Tensor& b_hh,
                      const at::Tensor& h, const at::Tensor& out_t, const at::Tensor& saved_t,
                      const int64_t* lengths, int64_t t) {
  const int64_t N = h.size(0), H = h.size(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, h.scalar_type(), "gru_forward_cpu", [&] {
    const scalar_t* gx_p = gx_t.const_data_ptr<scalar_t>();
    const scalar_t* gh_p = gh.const_data_ptr<scalar_t>();
    const scalar_t* b_p = b_hh.const_data_ptr<scalar_t>();
    scalar_t* h_p = h.mutable_data_ptr<scalar_t>();
    scalar_t* out_p = out_t.mutable_data_ptr<scalar_t>();
    scalar_t* saved_p = saved_t.defined() ? saved_t.mutable_data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, N, rows_per_task(H), [&](int64_t begin, int64_t end) {
      if (saved_p != nullptr) {
        forward_rows<scalar_t, true>(gx_p, gh_p, b_p, h_p, out_p, saved_p, lengths, t, H, begin,
                                     end);
      } else {
        forward_rows<scalar_t, false>(gx_p, gh_p, b_p, h_p, out_p, nullptr, lengths, t, H, begin,
                                      end);
      }
    });
  });
}

void backward_step_cpu(const at::Tensor& grad_out_t, const at::Tensor& dh,
                       const at::Tensor& saved_t, const at::Tensor& dgx_t,
                       const at::Tensor& dgh, const at::Tensor& dgh_n_t, const int64_t* lengths,
                       int64_t t) {
  const int64_t N = dh.size(0), H = dh.size(1);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dh.scalar_type(), "gru_backward_cpu", [&] {
    const scalar_t* go_p = grad_out_t.const_data_ptr<scalar_t>();
    scalar_t* dh_p = dh.mutable_data_ptr<scalar_t>();
    const scalar_t* saved_p = saved_t.const_data_ptr<scalar_t>();
    scalar_t* dgx_p = dgx_t.mutable_data_ptr<scalar_t>();
    scalar_t* dgh_p = dgh.mutable_data_ptr<scalar_t>();
    scalar_t* dgh_n_p = dgh_n_t.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, N, rows_per_task(H), [&](int64_t begin, int64_t end) {
      backward_rows(go_p, dh_p, saved_p, dgx_p, dgh_p, dgh_n_p, lengths, t, H, begin, end);
    });
  });
}

}  // namespace

const StepKernels cpu_step_kernels = {forward_step_cpu, backward_step_cpu};

}  // namespace gru_cuda
