// The layer's GEMMs in float16 on the CPU, computed in float32: PyTorch's float16 matrix
// product on a CPU without native float16 arithmetic is one to two orders of magnitude
// slower than its float32 one.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>

#include "../gru_layer.h"

namespace gru_cuda {

// out = a @ b, or out += a @ b with accumulate, through float32, rounded once into out.
// Returns false, computing nothing, unless all three are float16 CPU tensors, and for one
// row times a transposed weight (x W^T), which PyTorch's float16 GEMV does fast.
bool half_matmul_cpu(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b,
                     bool accumulate);

// A float16 loop's recurrent products on the CPU, with W_hh converted to float32 once per
// loop rather than at every step; nullptr for any other loop, and for a batch of one's
// forward (h W_hh^T, a fast float16 GEMV).
std::unique_ptr<RecurrentGemms> half_recurrent_gemms_cpu(const RecurrentGemmArgs& args);

}  // namespace gru_cuda
