// CPU registration of the ops: the shared layer driver with the CPU step kernels.
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "../gru_layer.h"

namespace gru_cuda {
namespace {

using ForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

ForwardResult gru_layer_cpu(
    const at::Tensor& input, const at::Tensor& hx, at::TensorList weights, bool has_biases,
    bool bidirectional, const std::optional<at::Tensor>& batch_sizes, bool need_backward) {
  return gru_layer_forward(input, hx, weights, has_biases, bidirectional, batch_sizes,
                           need_backward, cpu_step_kernels);
}

LayerGrads gru_layer_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& grad_hn, const at::Tensor& input,
    at::TensorList weights, bool has_biases, bool bidirectional, const at::Tensor& saved,
    const std::optional<at::Tensor>& batch_sizes, std::array<bool, 3> output_mask) {
  return gru_layer_backward(grad_output, grad_hn, input, weights, has_biases, bidirectional,
                            saved, batch_sizes, output_mask, cpu_step_kernels);
}

// As nn.GRU under CPU autocast: the layer runs in its input's dtype (a float32 input
// stays float32, not the autocast dtype); hx and the weights follow the input.
ForwardResult gru_layer_autocast_cpu(const at::Tensor& input, const at::Tensor& hx,
                                     at::TensorList weights, bool has_biases, bool bidirectional,
                                     const std::optional<at::Tensor>& batch_sizes,
                                     bool need_backward) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::DispatchKey::AutocastCPU);
  const c10::DeviceType cpu = c10::DeviceType::CPU;
  const at::ScalarType dtype = input.scalar_type();
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("gru_cuda::gru_layer", "")
                       .typed<decltype(gru_layer_cpu)>();
  return op.call(input, at::autocast::cached_cast(dtype, hx, cpu),
                 at::autocast::cached_cast(dtype, weights, cpu), has_biases, bidirectional,
                 batch_sizes, need_backward);
}

}  // namespace

TORCH_LIBRARY_IMPL(gru_cuda, CPU, m) {
  m.impl("gru_layer", &gru_layer_cpu);
  m.impl("gru_layer_backward", &gru_layer_backward_cpu);
}

TORCH_LIBRARY_IMPL(gru_cuda, AutocastCPU, m) {
  m.impl("gru_layer", &gru_layer_autocast_cpu);
}

}  // namespace gru_cuda
