// gru_cell: gru_layer for one step of 2-D tensors, as nn.GRUCell takes them. Composite,
// so autograd, autocast, fake tensors and every device follow gru_layer; its reason to
// be is speed: one call from Python where a decoding loop otherwise pays for three
// Python-level views (about 2 us of a 17 us step).
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "gru_layer_op.h"

namespace gru_cuda {
namespace {

at::Tensor gru_cell_composite(const at::Tensor& input, const at::Tensor& hx,
                              at::TensorList weights, bool has_biases, bool need_backward) {
  TORCH_CHECK(input.dim() == 2 && hx.dim() == 2,
              "gru_cuda::gru_cell: input (N, I) and hx (N, H) must be 2-D, got ", input.dim(),
              "-D and ", hx.dim(), "-D");
  const auto output = std::get<0>(gru_layer_op().call(
      input.unsqueeze(0), hx.unsqueeze(0), weights, has_biases, false, std::nullopt,
      need_backward));
  return output.select(0, 0);
}

}  // namespace

TORCH_LIBRARY_IMPL(gru_cuda, CompositeImplicitAutograd, m) {
  m.impl("gru_cell", &gru_cell_composite);
}

}  // namespace gru_cuda
