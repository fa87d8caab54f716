// The op schemas (the contract between the C++ kernels and the Python package),
// the CPU kernels' registration and the autocast wrapper.
#include <Python.h>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/library.h>

#include "gru_layer.h"

namespace gru_cuda {
namespace {

using ForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
using BackwardResult =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

ForwardResult gru_forward_cpu(const at::Tensor& input, const at::Tensor& hx,
                              const at::Tensor& w_ih, const at::Tensor& w_hh,
                              const std::optional<at::Tensor>& b_ih,
                              const std::optional<at::Tensor>& b_hh, bool reverse,
                              const std::optional<at::Tensor>& lengths, bool need_backward) {
  return gru_layer_forward(input, hx, w_ih, w_hh, b_ih, b_hh, reverse, lengths, need_backward,
                           cpu_step_kernels);
}

BackwardResult gru_backward_cpu(const at::Tensor& grad_output, const at::Tensor& grad_hn,
                                const at::Tensor& input, const at::Tensor& w_ih,
                                const at::Tensor& w_hh, const at::Tensor& saved, bool reverse,
                                const std::optional<at::Tensor>& lengths) {
  return gru_layer_backward(grad_output, grad_hn, input, w_ih, w_hh, saved, reverse, lengths,
                            cpu_step_kernels);
}

// Under torch.autocast the whole layer runs in the autocast dtype.
template <c10::DeviceType device_type, c10::DispatchKey autocast_key>
ForwardResult gru_forward_autocast(const at::Tensor& input, const at::Tensor& hx,
                                        const at::Tensor& w_ih, const at::Tensor& w_hh,
                                        const std::optional<at::Tensor>& b_ih,
                                        const std::optional<at::Tensor>& b_hh, bool reverse,
                                        const std::optional<at::Tensor>& lengths,
                                        bool need_backward) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(autocast_key);
  const at::ScalarType dtype = at::autocast::get_autocast_dtype(device_type);
  auto cast = [dtype](const at::Tensor& t) {
    return at::autocast::cached_cast(dtype, t, device_type);
  };
  auto cast_optional = [&](const std::optional<at::Tensor>& t) -> std::optional<at::Tensor> {
    if (!t.has_value()) return std::nullopt;
    return cast(*t);
  };
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("gru_cuda::gru_forward", "")
                       .typed<decltype(gru_forward_cpu)>();
  return op.call(cast(input), cast(hx), cast(w_ih), cast(w_hh), cast_optional(b_ih),
                 cast_optional(b_hh), reverse, lengths, need_backward);
}

}  // namespace

TORCH_LIBRARY(gru_cuda, m) {
  m.def(
      "gru_forward(Tensor input, Tensor hx, Tensor w_ih, Tensor w_hh, Tensor? b_ih, "
      "Tensor? b_hh, bool reverse, Tensor? lengths, bool need_backward=True) "
      "-> (Tensor, Tensor, Tensor)");
  m.def(
      "gru_backward(Tensor grad_output, Tensor grad_hn, Tensor input, Tensor w_ih, "
      "Tensor w_hh, Tensor saved, bool reverse, Tensor? lengths) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(gru_cuda, CPU, m) {
  m.impl("gru_forward", &gru_forward_cpu);
  m.impl("gru_backward", &gru_backward_cpu);
}

TORCH_LIBRARY_IMPL(gru_cuda, AutocastCUDA, m) {
  m.impl("gru_forward",
         &gru_forward_autocast<c10::DeviceType::CUDA, c10::DispatchKey::AutocastCUDA>);
}

TORCH_LIBRARY_IMPL(gru_cuda, AutocastCPU, m) {
  m.impl("gru_forward",
         &gru_forward_autocast<c10::DeviceType::CPU, c10::DispatchKey::AutocastCPU>);
}

}  // namespace gru_cuda

// Importing gru_cuda._C loads this library, which registers the ops above.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
