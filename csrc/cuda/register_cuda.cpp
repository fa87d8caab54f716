// CUDA registration of the ops: the shared layer driver with the CUDA step kernels,
// run on the inputs' device and its current stream.
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "gru_steps_cuda.h"

namespace gru_cuda {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_forward_cuda(
    const at::Tensor& input, const at::Tensor& hx, const at::Tensor& w_ih,
    const at::Tensor& w_hh, const std::optional<at::Tensor>& b_ih,
    const std::optional<at::Tensor>& b_hh, bool reverse,
    const std::optional<at::Tensor>& lengths, bool need_backward) {
  const c10::cuda::OptionalCUDAGuard guard(input.device());
  return gru_layer_forward(input, hx, w_ih, w_hh, b_ih, b_hh, reverse, lengths, need_backward,
                           cuda_step_kernels);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
gru_backward_cuda(const at::Tensor& grad_output, const at::Tensor& grad_hn,
                  const at::Tensor& input, const at::Tensor& w_ih, const at::Tensor& w_hh,
                  const at::Tensor& saved, bool reverse,
                  const std::optional<at::Tensor>& lengths) {
  const c10::cuda::OptionalCUDAGuard guard(input.device());
  return gru_layer_backward(grad_output, grad_hn, input, w_ih, w_hh, saved, reverse, lengths,
                            cuda_step_kernels);
}

}  // namespace

TORCH_LIBRARY_IMPL(gru_cuda, CUDA, m) {
  m.impl("gru_forward", &gru_forward_cuda);
  m.impl("gru_backward", &gru_backward_cuda);
}

}  // namespace gru_cuda
