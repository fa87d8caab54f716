// out = a @ w^T on the CPU for an `a` of a few rows, vectorized dot products; the
// layer driver's projections for a decoding step's batch.
#pragma once

#include <ATen/core/Tensor.h>

namespace gru_cuda {

// a (n, K) with unit column stride, w (M, K) contiguous, out (n, M) with unit column
// stride, all float32, float64 or bfloat16 (summed in float32). Returns false, computing
// nothing, for any other case or more than a few rows: BLAS serves those better.
bool small_matmul_cpu(const at::Tensor& a, const at::Tensor& w, const at::Tensor& out);

}  // namespace gru_cuda
