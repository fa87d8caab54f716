// Fused elementwise kernels of one GRU step on CUDA: one thread per (row, unit),
// launched on the current stream; the gate math comes from gru_cell.h.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include "../gru_cell.h"
#include "gru_steps_cuda.h"

namespace gru_cuda {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void forward_step_kernel(const scalar_t* __restrict__ gx,
                                    const scalar_t* __restrict__ gh,
                                    const scalar_t* __restrict__ b_hh, scalar_t* __restrict__ h,
                                    scalar_t* __restrict__ out, scalar_t* __restrict__ saved,
                                    const int64_t* __restrict__ lengths, int64_t t, int64_t N,
                                    int64_t H) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < N * H;
       idx += stride) {
    const int64_t row = idx / H;
    const int64_t j = idx - row * H;
    const scalar_t* gx_row = gx + row * 3 * H;
    const scalar_t* gh_row = gh + row * 3 * H;
    // saved is null in inference: nothing is kept for a backward.
    scalar_t* s = saved == nullptr ? nullptr : saved + row * kSavedBlocks * H;
    const scalar_t h_prev = h[idx];
    if (lengths != nullptr && t >= lengths[row]) {
      if (s != nullptr) save_gates(s, j, H, acc_t(0), acc_t(0), acc_t(0), scalar_t(0), h_prev);
      out[idx] = scalar_t(0);
      continue;
    }
    const acc_t gh_n = acc_t(gh_row[2 * H + j]) + acc_t(b_hh[2 * H + j]);
    const GateValues<acc_t> g = gru_cell_forward<acc_t>(
        gx_row[j], gx_row[H + j], gx_row[2 * H + j], acc_t(gh_row[j]) + acc_t(b_hh[j]),
        acc_t(gh_row[H + j]) + acc_t(b_hh[H + j]), gh_n, h_prev);
    if (s != nullptr) save_gates(s, j, H, g.r, g.z, g.n, scalar_t(gh_n), h_prev);
    const scalar_t h_new = g.h_new;
    h[idx] = h_new;
    out[idx] = h_new;
  }
}

template <typename scalar_t>
__global__ void backward_step_kernel(const scalar_t* __restrict__ grad_out,
                                     scalar_t* __restrict__ dh,
                                     const scalar_t* __restrict__ saved,
                                     scalar_t* __restrict__ dgx, scalar_t* __restrict__ dgh,
                                     scalar_t* __restrict__ dgh_n,
                                     const int64_t* __restrict__ lengths, int64_t t, int64_t N,
                                     int64_t H) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < N * H;
       idx += stride) {
    const int64_t row = idx / H;
    const int64_t j = idx - row * H;
    scalar_t* dgx_row = dgx + row * 3 * H;
    scalar_t* dgh_row = dgh + row * 3 * H;
    if (lengths != nullptr && t >= lengths[row]) {
      // Padding: no gradient enters, the carried one passes through unchanged.
      store_gate_grads(dgx_row, dgh_row, dgh_n + row * H, j, H, acc_t(0), acc_t(0), acc_t(0),
                       acc_t(0));
      continue;
    }
    const scalar_t* s = saved + row * kSavedBlocks * H;
    const acc_t dh_new = acc_t(grad_out[idx]) + acc_t(dh[idx]);
    const GateGrads<acc_t> g = gru_cell_backward_saved(dh_new, s, j, H);
    store_gate_grads(dgx_row, dgh_row, dgh_n + row * H, j, H, g.dgx_r, g.dgx_z, g.dgx_n,
                     g.dgh_n);
    dh[idx] = g.dh_direct;
  }
}

unsigned int blocks_for(int64_t elements) {
  const int64_t blocks = (elements + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535));
}

void forward_step_cuda(const at::Tensor& gx_t, const at::Tensor& gh, const at::Tensor& b_hh,
                       const at::Tensor& h, const at::Tensor& out_t, const at::Tensor& saved_t,
                       const int64_t* lengths, int64_t t) {
  const int64_t N = h.size(0), H = h.size(1);
  if (N * H == 0) return;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, h.scalar_type(), "gru_forward_cuda", [&] {
    forward_step_kernel<scalar_t><<<blocks_for(N * H), kThreads, 0, stream>>>(
        gx_t.const_data_ptr<scalar_t>(), gh.const_data_ptr<scalar_t>(),
        b_hh.const_data_ptr<scalar_t>(), h.mutable_data_ptr<scalar_t>(),
        out_t.mutable_data_ptr<scalar_t>(),
        saved_t.defined() ? saved_t.mutable_data_ptr<scalar_t>() : nullptr, lengths, t, N, H);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

void backward_step_cuda(const at::Tensor& grad_out_t, const at::Tensor& dh,
                        const at::Tensor& saved_t, const at::Tensor& dgx_t,
                        const at::Tensor& dgh, const at::Tensor& dgh_n_t, const int64_t* lengths,
                        int64_t t) {
  const int64_t N = dh.size(0), H = dh.size(1);
  if (N * H == 0) return;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, dh.scalar_type(), "gru_backward_cuda", [&] {
    backward_step_kernel<scalar_t><<<blocks_for(N * H), kThreads, 0, stream>>>(
        grad_out_t.const_data_ptr<scalar_t>(), dh.mutable_data_ptr<scalar_t>(),
        saved_t.const_data_ptr<scalar_t>(), dgx_t.mutable_data_ptr<scalar_t>(),
        dgh.mutable_data_ptr<scalar_t>(), dgh_n_t.mutable_data_ptr<scalar_t>(), lengths, t, N,
        H);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace

const StepKernels cuda_step_kernels = {forward_step_cuda, backward_step_cuda};

}  // namespace gru_cuda
