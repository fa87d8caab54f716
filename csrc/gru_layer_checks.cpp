#include "gru_layer_checks.h"

#include <ATen/core/TensorBody.h>
#include <c10/util/Exception.h>

#include <ostream>
#include <vector>

#include "gru_cell.h"
#include "gru_layer.h"

namespace gru_cuda {
namespace {

// An argument's name for error messages, put together only when one is raised: a
// one-step call would feel string building on every check.
struct ArgName {
  const char* base;
  bool reverse = false;
};

std::ostream& operator<<(std::ostream& out, const ArgName& name) {
  return out << name.base << (name.reverse ? "_reverse" : "");
}

constexpr const char* kWeightNames[] = {"w_ih", "w_hh", "b_ih", "b_hh"};

ArgName weight_name(int64_t k, int64_t per_direction) {
  return {kWeightNames[k % per_direction], k >= per_direction};
}

void check_like_input(const at::Tensor& input, const at::Tensor& t, const ArgName& name) {
  TORCH_CHECK(t.device() == input.device(), "gru_cuda: ", name, " is on ", t.device(),
              " but input is on ", input.device());
  TORCH_CHECK(t.scalar_type() == input.scalar_type(), "gru_cuda: ", name, " has dtype ",
              t.scalar_type(), " but input has dtype ", input.scalar_type());
}

void check_shape(const at::Tensor& t, c10::SymIntArrayRef expected, const ArgName& name,
                 const char* meaning = "") {
  TORCH_CHECK(t.sym_sizes() == expected, "gru_cuda: ", name, " must have shape ", expected,
              meaning, ", got ", t.sym_sizes());
}

}  // namespace

LayerSizes check_layer_args(const at::Tensor& input, const at::Tensor& state,
                            const char* state_name, at::TensorList weights, bool has_biases,
                            bool bidirectional, const std::optional<at::Tensor>& batch_sizes) {
  LayerSizes s;
  s.D = bidirectional ? 2 : 1;
  s.packed = batch_sizes.has_value();
  TORCH_CHECK(input.is_floating_point(), "gru_cuda: input must be floating point, got ",
              input.scalar_type());
  TORCH_CHECK(input.dim() == (s.packed ? 2 : 3), "gru_cuda: input must be ",
              s.packed ? "2-D (rows, I) with batch_sizes" : "3-D (T, N, I)", ", got ",
              input.dim(), "-D");
  const int64_t per_direction = weights_per_direction(has_biases);
  TORCH_CHECK(static_cast<int64_t>(weights.size()) == s.D * per_direction, "gru_cuda: expected ",
              s.D * per_direction, " weights (w_ih, w_hh", has_biases ? ", b_ih, b_hh" : "",
              " per direction), got ", weights.size());
  for (size_t k = 0; k < weights.size(); ++k) {
    check_like_input(input, weights[k], weight_name(k, per_direction));
  }
  TORCH_CHECK(weights[1].dim() == 2 && weights[1].sym_size(0) == 3 * weights[1].sym_size(1),
              "gru_cuda: w_hh must have shape [3*H, H], got ", weights[1].sym_sizes());
  s.H = weights[1].sym_size(1);
  s.I = input.sym_size(-1);
  for (int64_t d = 0; d < s.D; ++d) {
    const int64_t k = d * per_direction;
    check_shape(weights[k], {3 * s.H, s.I}, weight_name(k, per_direction), " (3*H, input size)");
    check_shape(weights[k + 1], {3 * s.H, s.H}, weight_name(k + 1, per_direction));
    if (has_biases) {
      check_shape(weights[k + 2], {3 * s.H}, weight_name(k + 2, per_direction));
      check_shape(weights[k + 3], {3 * s.H}, weight_name(k + 3, per_direction));
    }
  }
  check_like_input(input, state, {state_name});
  if (s.packed) {
    const at::Tensor& sizes = *batch_sizes;
    // On the CPU, as the loop's shape; on meta only in a meta (or fake) call.
    const bool placed = sizes.device().is_cpu() || (sizes.is_meta() && input.is_meta());
    TORCH_CHECK(placed && sizes.scalar_type() == at::kLong && sizes.dim() == 1,
                "gru_cuda: batch_sizes must be a 1-D int64 tensor on the CPU (a "
                "PackedSequence's), got ",
                sizes.scalar_type(), ", ", sizes.dim(), "-D, on ", sizes.device(),
                " with input on ", input.device());
    s.T = sizes.sym_numel();
    TORCH_CHECK(s.T >= 1, "gru_cuda: batch_sizes is empty");
    s.rows = input.sym_size(0);
    // The batch is batch_sizes[0], data only real tensors show: read_batch_sizes checks it.
    TORCH_CHECK(state.dim() == 3, "gru_cuda: ", state_name, " must be 3-D (D, N, H), got ",
                state.sym_sizes());
    s.N = state.sym_size(1);
  } else {
    s.T = input.sym_size(0);
    s.N = input.sym_size(1);
    s.rows = s.T * s.N;
  }
  check_shape(state, {s.D, s.N, s.H}, {state_name});
  return s;
}

LayerSizes check_layer_backward_args(const at::Tensor& grad_output, const at::Tensor& grad_hn,
                                     const at::Tensor& input, at::TensorList weights,
                                     bool has_biases, bool bidirectional,
                                     const at::Tensor& saved,
                                     const std::optional<at::Tensor>& batch_sizes) {
  const LayerSizes s = check_layer_args(input, grad_hn, "grad_hn", weights, has_biases,
                                        bidirectional, batch_sizes);
  check_like_input(input, grad_output, {"grad_output"});
  if (s.packed) {
    check_shape(grad_output, {s.rows, s.D * s.H}, {"grad_output"});
  } else {
    check_shape(grad_output, {s.T, s.N, s.D * s.H}, {"grad_output"});
  }
  check_like_input(input, saved, {"saved"});
  check_shape(saved, {s.rows, s.D * kSavedBlocks * s.H}, {"saved"});
  return s;
}

std::vector<int64_t> read_batch_sizes(const at::Tensor& batch_sizes, const LayerSizes& s,
                                      const char* state_name) {
  const at::Tensor values = batch_sizes.contiguous();
  const int64_t* v = values.const_data_ptr<int64_t>();
  std::vector<int64_t> sizes(v, v + values.numel());
  int64_t rows = 0;
  for (size_t t = 0; t < sizes.size(); ++t) {
    TORCH_CHECK(sizes[t] >= 1 && (t == 0 || sizes[t] <= sizes[t - 1]),
                "gru_cuda: batch_sizes must be positive and non-increasing (a "
                "PackedSequence's), got ",
                at::IntArrayRef(sizes));
    rows += sizes[t];
  }
  TORCH_CHECK(s.rows == rows, "gru_cuda: batch_sizes sum to ", rows, " rows but input has ",
              s.rows);
  TORCH_CHECK(s.N == sizes[0], "gru_cuda: ", state_name, " must have shape [", s.D, ", ",
              sizes[0], ", ", s.H, "] (batch_sizes[0] rows), got [", s.D, ", ", s.N, ", ", s.H,
              "]");
  return sizes;
}

}  // namespace gru_cuda
