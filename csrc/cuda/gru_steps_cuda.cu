// Fused elementwise kernels of one GRU step on CUDA: one launch per step covers both
// directions' live rows, one thread per (row, unit), on the current stream; the element
// math comes from gru_cell.h.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include "../gru_cell.h"
#include "gru_steps_cuda.h"

namespace gru_cuda {
namespace {

constexpr int kThreads = 256;

template <typename S>
__host__ __device__ int64_t total_rows(const S& step) {
  return step.dir[0].rows + (step.num_directions > 1 ? step.dir[1].rows : 0);
}

template <typename scalar_t, bool kSave>
__global__ void forward_step_kernel(const ForwardStep step) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t H = step.H;
  const int64_t rows0 = step.dir[0].rows;
  const int64_t total = total_rows(step) * H;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    const int64_t r = idx / H;
    const int64_t j = idx - r * H;
    const int d = r < rows0 ? 0 : 1;
    const int64_t row = d == 0 ? r : r - rows0;
    const DirectionForward& f = step.dir[d];
    scalar_t* h_row = static_cast<scalar_t*>(f.h) + row * H;
    gru_forward_element<acc_t, kSave>(
        static_cast<const scalar_t*>(f.gx) + row * step.gx_stride,
        static_cast<const scalar_t*>(f.gh) + row * 3 * H + j, H,
        static_cast<const scalar_t*>(f.b_ih), static_cast<const scalar_t*>(f.b_hh), h_row, h_row,
        static_cast<scalar_t*>(f.out) + row * step.out_stride,
        kSave ? static_cast<scalar_t*>(f.saved) + row * step.saved_stride : nullptr, j, H);
  }
}

template <typename scalar_t>
__global__ void backward_step_kernel(const BackwardStep step) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t H = step.H;
  const int64_t rows0 = step.dir[0].rows;
  const int64_t total = total_rows(step) * H;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    const int64_t r = idx / H;
    const int64_t j = idx - r * H;
    const int d = r < rows0 ? 0 : 1;
    const int64_t row = d == 0 ? r : r - rows0;
    const DirectionBackward& b = step.dir[d];
    gru_backward_element<acc_t>(
        static_cast<const scalar_t*>(b.grad_out) + row * step.out_stride,
        static_cast<scalar_t*>(b.dh) + row * H,
        static_cast<const scalar_t*>(b.saved) + row * step.saved_stride,
        static_cast<scalar_t*>(b.dgx) + row * step.gx_stride,
        static_cast<scalar_t*>(b.dgh) + row * 3 * H,
        static_cast<scalar_t*>(b.dgh_n) + row * step.out_stride, j, H);
  }
}

unsigned int blocks_for(int64_t elements) {
  const int64_t blocks = (elements + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535));
}

void forward_step_cuda(const ForwardStep& step, DirectionGemm gemm) {
  for (int64_t d = 0; d < step.num_directions; ++d) gemm(d);
  const int64_t elements = total_rows(step) * step.H;
  if (elements == 0) return;
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, step.dtype, "gru_forward_cuda", [&] {
    if (step.dir[0].saved != nullptr) {
      forward_step_kernel<scalar_t, true><<<blocks_for(elements), kThreads, 0, stream>>>(step);
    } else {
      forward_step_kernel<scalar_t, false><<<blocks_for(elements), kThreads, 0, stream>>>(step);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

void backward_step_cuda(const BackwardStep& step, DirectionGemm gemm) {
  const int64_t elements = total_rows(step) * step.H;
  if (elements > 0) {
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, step.dtype, "gru_backward_cuda", [&] {
      backward_step_kernel<scalar_t><<<blocks_for(elements), kThreads, 0, stream>>>(step);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  for (int64_t d = 0; d < step.num_directions; ++d) gemm(d);
}

}  // namespace

const StepKernels cuda_step_kernels = {forward_step_cuda, backward_step_cuda,
                                       persistent_layer_forward, persistent_layer_backward};

}  // namespace gru_cuda
