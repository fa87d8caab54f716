// Fused elementwise kernels of one GRU step on CUDA: one launch per step covers both
// directions' live rows, one thread per (row, unit), on the current stream; the element
// math comes from gru_cell.h. In a replayed graph the steps' pointers into the call's
// tensors are offsets from addresses stored before each replay (csrc/replay/cuda/).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

#include "../gemm/cuda/direct_gemm_cuda.h"
#include "../gemm/cuda/recurrent_gemms_cuda.h"
#include "../persistent/cuda/persistent_layer.h"
#include "../replay/cuda/step_replay.h"
#include "gru_steps_cuda.h"

namespace gru_cuda {
namespace {

constexpr int kThreads = 256;

// One thread per element of the step: unit idx % H of the step's row idx / H.
template <typename scalar_t, typename Pass>
__global__ void step_kernel(const typename Pass::StepType step) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t H = step.H;
  const int64_t total = step.total_rows() * H;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += stride) {
    const int64_t r = idx / H;
    Pass::template element<acc_t>(Pass::template row<scalar_t>(step, r), idx - r * H, H);
  }
}

template <typename scalar_t, typename Pass>
void launch(const typename Pass::StepType& step) {
  const int64_t elements = step.total_rows() * step.H;
  if (elements == 0) return;
  const int64_t blocks = std::min<int64_t>((elements + kThreads - 1) / kThreads, 65535);
  step_kernel<scalar_t, Pass><<<static_cast<unsigned int>(blocks), kThreads, 0,
                                c10::cuda::getCurrentCUDAStream()>>>(step);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void forward_step_cuda(const ForwardStep& step, StepGemms gemms) {
  gemms(0, step.num_directions);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, step.dtype, "gru_forward_cuda", [&] {
    if (step.save) {
      launch<scalar_t, ForwardPass<true>>(step);
    } else {
      launch<scalar_t, ForwardPass<false>>(step);
    }
  });
}

void backward_step_cuda(const BackwardStep& step, StepGemms gemms) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, step.dtype, "gru_backward_cuda", [&] {
    launch<scalar_t, BackwardPass>(step);
  });
  gemms(0, step.num_directions);
}

}  // namespace

const StepKernels cuda_step_kernels = {forward_step_cuda,
                                       backward_step_cuda,
                                       persistent_layer_forward,
                                       persistent_layer_backward,
                                       /*small_matmul=*/nullptr,
                                       replay_steps_cuda,
                                       direct_matmul_cuda,
                                       recurrent_gemms_cuda};

}  // namespace gru_cuda
