// Fused elementwise kernels of one GRU step on CUDA: one launch per step covers both
// directions' live rows, one thread per (row, unit), on the current stream; the element
// math comes from gru_cell.h.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include "../persistent/cuda/persistent_layer.h"
#include "gru_steps_cuda.h"

namespace gru_cuda {
namespace {

constexpr int kThreads = 256;

// Element idx of the step: unit idx % H of the step's row idx / H.
template <typename scalar_t, bool kSave>
__global__ void forward_step_kernel(const ForwardStep step) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t H = step.H;
  const int64_t total = step.total_rows() * H;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    const int64_t r = idx / H;
    forward_row_element<acc_t, kSave>(forward_row<scalar_t>(step, r), idx - r * H, H);
  }
}

template <typename scalar_t>
__global__ void backward_step_kernel(const BackwardStep step) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t H = step.H;
  const int64_t total = step.total_rows() * H;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    const int64_t r = idx / H;
    backward_row_element<acc_t>(backward_row<scalar_t>(step, r), idx - r * H, H);
  }
}

unsigned int blocks_for(int64_t elements) {
  const int64_t blocks = (elements + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535));
}

void forward_step_cuda(const ForwardStep& step, DirectionGemm gemm) {
  for (int64_t d = 0; d < step.num_directions; ++d) gemm(d);
  const int64_t elements = step.total_rows() * step.H;
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
  const int64_t elements = step.total_rows() * step.H;
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
