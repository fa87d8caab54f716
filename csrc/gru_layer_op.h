// The gru_layer op as a typed dispatcher handle, for the kernels that call it through the
// dispatcher (the autocast kernels, the composite gru_cell), looked up once.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <optional>
#include <tuple>

namespace gru_cuda {

using GruLayerSignature = std::tuple<at::Tensor, at::Tensor, at::Tensor>(
    const at::Tensor&, const at::Tensor&, at::TensorList, bool, bool,
    const std::optional<at::Tensor>&, bool);

inline const c10::TypedOperatorHandle<GruLayerSignature>& gru_layer_op() {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("gru_cuda::gru_layer", "")
                             .typed<GruLayerSignature>();
  return op;
}

}  // namespace gru_cuda
