// The op's autocast kernel, for each device's registration: casts hx and the weights
// (and the input) to the dtype the device's autocast policy gives the layer, then calls
// the op below autocast.
#pragma once

#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

#include "gru_layer_op.h"

namespace gru_cuda {

// kInInputDtype: the layer runs in its input's dtype (nn.GRU under CPU autocast), else
// in the autocast dtype (nn.GRU's cuDNN path under CUDA autocast).
template <c10::DeviceType kDevice, c10::DispatchKey kAutocastKey, bool kInInputDtype>
std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_layer_autocast(
    const at::Tensor& input, const at::Tensor& hx, at::TensorList weights, bool has_biases,
    bool bidirectional, const std::optional<at::Tensor>& batch_sizes, bool need_backward) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(kAutocastKey);
  const at::ScalarType dtype =
      kInInputDtype ? input.scalar_type() : at::autocast::get_autocast_dtype(kDevice);
  return gru_layer_op().call(at::autocast::cached_cast(dtype, input, kDevice),
                             at::autocast::cached_cast(dtype, hx, kDevice),
                             at::autocast::cached_cast(dtype, weights, kDevice), has_biases,
                             bidirectional, batch_sizes, need_backward);
}

}  // namespace gru_cuda
