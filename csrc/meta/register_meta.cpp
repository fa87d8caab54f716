// Meta registration of the ops: what torch.compile, torch.export and FakeTensorMode run
// in place of the kernels. The same argument checks as the real kernels (symbolic sizes
// allowed), then outputs of the right shapes and no data.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "../gru_cell.h"
#include "../gru_layer.h"
#include "../gru_layer_checks.h"

namespace gru_cuda {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_layer_meta(
    const at::Tensor& input, const at::Tensor& hx, at::TensorList weights, bool has_biases,
    bool bidirectional, const std::optional<at::Tensor>& batch_sizes, bool need_backward) {
  const LayerSizes s =
      check_layer_args(input, hx, "hx", weights, has_biases, bidirectional, batch_sizes);
  const at::TensorOptions options = input.options();
  at::Tensor output = s.packed ? at::empty_symint({s.rows, s.D * s.H}, options)
                               : at::empty_symint({s.T, s.N, s.D * s.H}, options);
  at::Tensor saved = need_backward
                         ? at::empty_symint({s.rows, s.D * kSavedBlocks * s.H}, options)
                         : at::empty({0}, options);
  return {output, at::empty_symint(hx.sym_sizes(), hx.options()), saved};
}

LayerGrads gru_layer_backward_meta(
    const at::Tensor& grad_output, const at::Tensor& grad_hn, const at::Tensor& input,
    at::TensorList weights, bool has_biases, bool bidirectional, const at::Tensor& saved,
    const std::optional<at::Tensor>& batch_sizes, std::array<bool, 3> output_mask) {
  check_layer_backward_args(grad_output, grad_hn, input, weights, has_biases, bidirectional,
                            saved, batch_sizes);
  std::vector<at::Tensor> grad_weights;
  for (size_t k = 0; k < weights.size() && output_mask[2]; ++k) {
    grad_weights.push_back(at::empty_symint(weights[k].sym_sizes(), weights[k].options()));
  }
  // grad_input takes input's layout, as the real kernels give it; the rest are contiguous.
  return {output_mask[0] ? std::optional<at::Tensor>(at::empty_like(input)) : std::nullopt,
          output_mask[1]
              ? std::optional<at::Tensor>(at::empty_symint(grad_hn.sym_sizes(), grad_hn.options()))
              : std::nullopt,
          grad_weights};
}

}  // namespace

TORCH_LIBRARY_IMPL(gru_cuda, Meta, m) {
  m.impl("gru_layer", &gru_layer_meta);
  m.impl("gru_layer_backward", &gru_layer_backward_meta);
}

}  // namespace gru_cuda
