// CUDA registration of the ops: the shared layer driver with the CUDA step kernels, run
// on the inputs' device and its current stream; under torch.autocast the whole layer
// runs in the autocast dtype, as cuDNN's GRU does.
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "gru_steps_cuda.h"

namespace gru_cuda {
namespace {

using ForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

ForwardResult gru_layer_cuda(const at::Tensor& input, const at::Tensor& hx,
                             at::TensorList weights, bool has_biases, bool bidirectional,
                             const std::optional<at::Tensor>& batch_sizes, bool need_backward) {
  const c10::cuda::OptionalCUDAGuard guard(input.device());
  return gru_layer_forward(input, hx, weights, has_biases, bidirectional, batch_sizes,
                           need_backward, cuda_step_kernels);
}

LayerGrads gru_layer_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& grad_hn, const at::Tensor& input,
    at::TensorList weights, bool has_biases, bool bidirectional, const at::Tensor& saved,
    const std::optional<at::Tensor>& batch_sizes, std::array<bool, 3> output_mask) {
  const c10::cuda::OptionalCUDAGuard guard(input.device());
  return gru_layer_backward(grad_output, grad_hn, input, weights, has_biases, bidirectional,
                            saved, batch_sizes, output_mask, cuda_step_kernels);
}

ForwardResult gru_layer_autocast_cuda(const at::Tensor& input, const at::Tensor& hx,
                                      at::TensorList weights, bool has_biases,
                                      bool bidirectional,
                                      const std::optional<at::Tensor>& batch_sizes,
                                      bool need_backward) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCUDA);
  const c10::DeviceType cuda = c10::DeviceType::CUDA;
  const at::ScalarType dtype = at::autocast::get_autocast_dtype(cuda);
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("gru_cuda::gru_layer", "")
                       .typed<decltype(gru_layer_cuda)>();
  return op.call(at::autocast::cached_cast(dtype, input, cuda),
                 at::autocast::cached_cast(dtype, hx, cuda),
                 at::autocast::cached_cast(dtype, weights, cuda), has_biases, bidirectional,
                 batch_sizes, need_backward);
}

}  // namespace

TORCH_LIBRARY_IMPL(gru_cuda, CUDA, m) {
  m.impl("gru_layer", &gru_layer_cuda);
  m.impl("gru_layer_backward", &gru_layer_backward_cuda);
}

TORCH_LIBRARY_IMPL(gru_cuda, AutocastCUDA, m) {
  m.impl("gru_layer", &gru_layer_autocast_cuda);
}

}  // namespace gru_cuda
