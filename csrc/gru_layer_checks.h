// Everything the layer op requires of its arguments, checked once for real and for meta
// (fake) tensors alike: the sizes are symbolic where torch.compile traces with dynamic
// shapes. What depends on tensor data (a PackedSequence's batch_sizes values) only real
// tensors can show: the driver checks that as it reads them.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/SymInt.h>

#include <optional>
#include <vector>

namespace gru_cuda {

struct LayerSizes {
  c10::SymInt T, N, I, H, rows;  // packed: T = steps, N = batch_sizes[0] (hx's batch)
  int64_t D = 1;
  bool packed = false;
};

// state is hx in the forward and grad_hn in the backward: (D, N, H) either way.
LayerSizes check_layer_args(const at::Tensor& input, const at::Tensor& state,
                            const char* state_name, at::TensorList weights, bool has_biases,
                            bool bidirectional, const std::optional<at::Tensor>& batch_sizes);

// The backward's arguments beyond the forward's: grad_output like the output, saved like
// the workspace the forward kept.
LayerSizes check_layer_backward_args(const at::Tensor& grad_output, const at::Tensor& grad_hn,
                                     const at::Tensor& input, at::TensorList weights,
                                     bool has_biases, bool bidirectional,
                                     const at::Tensor& saved,
                                     const std::optional<at::Tensor>& batch_sizes);

// batch_sizes' values (on the CPU), checked against the sizes: each step's live rows.
std::vector<int64_t> read_batch_sizes(const at::Tensor& batch_sizes, const LayerSizes& s,
                                      const char* state_name);

}  // namespace gru_cuda
