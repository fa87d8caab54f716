// What the direct GEMMs need from cuBLAS, resolved once: its entry points as torch loaded
// them, the data and compute types and the math mode for a dtype as nn.GRU's precision
// settings ask, and the scalars alpha and beta.
#pragma once

#include <c10/core/ScalarType.h>
#include <cublas_v2.h>

namespace gru_cuda {

// The 32-bit-size C entry points (C++ also declares 64-bit overloads).
using GemmEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                  int, int, const void*, const void*, cudaDataType, int,
                                  const void*, cudaDataType, int, const void*, void*,
                                  cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
using GemmStridedBatchedEx = cublasStatus_t (*)(
    cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
    const void*, cudaDataType, int, long long, const void*, cudaDataType, int, long long,
    const void*, void*, cudaDataType, int, long long, int, cublasComputeType_t,
    cublasGemmAlgo_t);
using SetMathMode = cublasStatus_t (*)(cublasHandle_t, cublasMath_t);

struct CublasEntryPoints {
  GemmEx gemm_ex;
  GemmStridedBatchedEx gemm_strided_batched_ex;
  SetMathMode set_math_mode;
};

// nullptr, with one warning, where cuBLAS cannot be found: the GEMMs then stay ATen's.
const CublasEntryPoints* cublas();

// cuBLAS's data and compute types for dtype (float32: TF32 where cuDNN's RNNs may use
// it); false for a dtype the direct GEMMs do not take.
bool cublas_types(at::ScalarType dtype, cudaDataType& data, cublasComputeType_t& compute);

// The handle's math mode for dtype, as ATen's own GEMMs would set it.
cublasMath_t math_mode_for(at::ScalarType dtype);

// Whether PyTorch lets cuDNN's RNNs use TF32 for float32 now (what nn.GRU does on CUDA).
bool rnn_allows_tf32();

// alpha = 1 and beta (0, or 1 to accumulate) in the type cuBLAS reads for dtype.
class GemmScalars {
 public:
  GemmScalars(at::ScalarType dtype, bool accumulate)
      : is_double_(dtype == at::kDouble), beta_f_(accumulate ? 1.0f : 0.0f),
        beta_d_(accumulate ? 1.0 : 0.0) {}
  const void* alpha() const { return is_double_ ? static_cast<const void*>(&one_d_) : &one_f_; }
  const void* beta() const { return is_double_ ? static_cast<const void*>(&beta_d_) : &beta_f_; }

 private:
  bool is_double_;
  float one_f_ = 1.0f, beta_f_;
  double one_d_ = 1.0, beta_d_;
};

}  // namespace gru_cuda
