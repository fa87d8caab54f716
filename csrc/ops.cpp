// The op schemas: the contract between the C++ kernels and the Python package. Each
// device registers its kernels beside its code (cpu/register_cpu.cpp,
// cuda/register_cuda.cpp); the persistent path registers its own ops
// (persistent/persistent_ops.cpp).
#include <torch/library.h>

TORCH_LIBRARY(gru_cuda, m) {
  // input: (T, N, I), or a PackedSequence's (rows, I) with its batch_sizes (int64, CPU).
  // hx: (D, N, H). weights: w_ih, w_hh[, b_ih, b_hh] per direction.
  // Returns output, h_n and the workspace the backward reads.
  m.def(
      "gru_layer(Tensor input, Tensor hx, Tensor[] weights, bool has_biases, "
      "bool bidirectional, Tensor? batch_sizes, bool need_backward=True) "
      "-> (Tensor, Tensor, Tensor)");
  // One step of one direction on nn.GRUCell's 2-D input (N, I) and hx (N, H): the new
  // state. Composite over gru_layer (gru_cell_op.cpp).
  m.def(
      "gru_cell(Tensor input, Tensor hx, Tensor[] weights, bool has_biases, "
      "bool need_backward=True) -> Tensor");
  // Returns grad_input, grad_hx and the weights' gradients; output_mask says which are
  // wanted (the others are None, or an empty list for the weights).
  m.def(
      "gru_layer_backward(Tensor grad_output, Tensor grad_hn, Tensor input, Tensor[] weights, "
      "bool has_biases, bool bidirectional, Tensor saved, Tensor? batch_sizes, "
      "bool[3] output_mask) -> (Tensor?, Tensor?, Tensor[])");
}
