#include "direct_gemm_cuda.h"

#include <ATen/Context.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/util/Exception.h>
#include <cublas_v2.h>
#include <dlfcn.h>
#include <torch/version.h>

#include <algorithm>
#include <climits>
#include <string>
#include <type_traits>

#include "../direct_gemm_switch.h"

namespace gru_cuda {
namespace {

// cublasGemmEx with 32-bit sizes (C++ also declares a 64-bit overload).
using GemmEx = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                  int, int, const void*, const void*, cudaDataType, int,
                                  const void*, cudaDataType, int, const void*, void*,
                                  cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
using SetMathMode = cublasStatus_t (*)(cublasHandle_t, cublasMath_t);

struct CublasEntryPoints {
  GemmEx gemm_ex;
  SetMathMode set_math_mode;
};

// cuBLAS as torch loaded it (libtorch_cuda links it): the extension needs no link to a
// cuBLAS the toolkit may not ship (the nvidia wheels carry no unversioned library).
// nullptr, with one warning, where it cannot be found: the GEMMs then stay ATen's.
const CublasEntryPoints* cublas() {
  static const CublasEntryPoints* entry_points = []() -> const CublasEntryPoints* {
    const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* library = dlopen(name.c_str(), RTLD_NOW | RTLD_NOLOAD);
    if (library == nullptr) library = dlopen(name.c_str(), RTLD_NOW);
    static CublasEntryPoints found{};
    if (library != nullptr) {
      found = {reinterpret_cast<GemmEx>(dlsym(library, "cublasGemmEx")),
               reinterpret_cast<SetMathMode>(dlsym(library, "cublasSetMathMode"))};
    }
    if (found.gemm_ex == nullptr || found.set_math_mode == nullptr) {
      TORCH_WARN("gru_cuda: no cublasGemmEx in ", name, "; the direct GEMMs fall back to ATen");
      return nullptr;
    }
    return &found;
  }();
  return entry_points;
}

// PyTorch's setting for reduced-precision reductions in half-type GEMMs: a bool in older
// torch, an option whose first value allows them in newer.
template <typename Option>
bool reduced_precision_allowed(Option option) {
  if constexpr (std::is_same_v<Option, bool>) {
    return option;
  } else {
    return option == Option{};
  }
}

// The handle's math mode for dtype, as ATen's own GEMMs would set it; float32's
// precision is the compute type's alone (a TF32 math mode would override full fp32).
cublasMath_t math_mode_for(at::ScalarType dtype) {
  const at::Context& context = at::globalContext();
  const bool reduced = dtype == at::kHalf ? reduced_precision_allowed(
                                                context.allowFP16ReductionCuBLAS())
                       : dtype == at::kBFloat16
                           ? reduced_precision_allowed(context.allowBF16ReductionCuBLAS())
                           : true;
  return reduced ? CUBLAS_DEFAULT_MATH
                 : static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH |
                                             CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION);
}

// torch before 2.10 asks for one op's TF32 setting by name, or (older) for cuDNN's only.
template <typename Context>
auto rnn_tf32_by_name(const Context& context, int)
    -> decltype(context.allowTF32CuDNN(std::string("rnn"))) {
  return context.allowTF32CuDNN(std::string("rnn"));
}
template <typename Context>
bool rnn_tf32_by_name(const Context& context, long) {
  return context.allowTF32CuDNN();
}

// A matrix as cuBLAS reads it: its first element, its leading dimension, and whether it
// is stored by columns (a transposed view) rather than by rows.
struct Operand {
  const void* data;
  int64_t ld;
  bool by_columns;
};

// False for what cuBLAS cannot read: strided both ways, or rows that overlap.
bool operand_of(const at::Tensor& t, Operand& o) {
  const int64_t rows = t.size(0), cols = t.size(1);
  if ((cols == 1 || t.stride(1) == 1) && (rows == 1 || t.stride(0) >= cols)) {
    o = {t.const_data_ptr(), rows == 1 ? std::max<int64_t>(cols, 1) : t.stride(0), false};
    return true;
  }
  if ((rows == 1 || t.stride(0) == 1) && (cols == 1 || t.stride(1) >= rows)) {
    o = {t.const_data_ptr(), cols == 1 ? std::max<int64_t>(rows, 1) : t.stride(1), true};
    return true;
  }
  return false;
}

bool fits_int(std::initializer_list<int64_t> values) {
  return std::all_of(values.begin(), values.end(), [](int64_t v) { return v <= INT_MAX; });
}

bool declined() {
  direct_gemm_counts().declined++;
  return false;
}

// cuBLAS's data and compute types for dtype; false for a dtype it is not used for.
bool cublas_types(at::ScalarType dtype, cudaDataType& data, cublasComputeType_t& compute) {
  compute = CUBLAS_COMPUTE_32F;  // float accumulation for the half types too
  switch (dtype) {
    case at::kFloat:
      data = CUDA_R_32F;
      if (rnn_allows_tf32()) compute = CUBLAS_COMPUTE_32F_FAST_TF32;
      return true;
    case at::kHalf:
      data = CUDA_R_16F;
      return true;
    case at::kBFloat16:
      data = CUDA_R_16BF;
      return true;
    case at::kDouble:
      data = CUDA_R_64F;
      compute = CUBLAS_COMPUTE_64F;
      return true;
    default:
      return false;
  }
}

}  // namespace

bool rnn_allows_tf32() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 10)
  return at::globalContext().allowTF32CuDNN(at::Float32Op::RNN);
#else
  return rnn_tf32_by_name(at::globalContext(), 0);
#endif
}

bool direct_matmul_cuda(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b,
                        bool accumulate) {
  if (!direct_gemm_enabled().load()) return false;
  const CublasEntryPoints* api = cublas();
  if (api == nullptr) return declined();
  const at::ScalarType dtype = out.scalar_type();
  if (a.scalar_type() != dtype || b.scalar_type() != dtype || out.dim() != 2 ||
      a.dim() != 2 || b.dim() != 2) {
    return declined();
  }
  const int64_t m = out.size(0), n = out.size(1), k = a.size(1);
  TORCH_INTERNAL_ASSERT(a.size(0) == m && b.size(0) == k && b.size(1) == n);
  Operand oa, ob, oc;
  cudaDataType data_type;
  cublasComputeType_t compute;
  if (k == 0 || !cublas_types(dtype, data_type, compute) || !operand_of(a, oa) ||
      !operand_of(b, ob) || !operand_of(out, oc) || oc.by_columns ||
      !fits_int({m, n, k, oa.ld, ob.ld, oc.ld})) {
    return declined();
  }
  direct_gemm_counts().gemms++;
  if (m == 0 || n == 0) return true;
  const float alpha_f = 1.0f, beta_f = accumulate ? 1.0f : 0.0f;
  const double alpha_d = 1.0, beta_d = accumulate ? 1.0 : 0.0;
  const bool is_double = dtype == at::kDouble;
  const void* alpha = is_double ? static_cast<const void*>(&alpha_d) : &alpha_f;
  const void* beta = is_double ? static_cast<const void*>(&beta_d) : &beta_f;

  // Row-major C = A B is column-major C^T = B^T A^T: B first. A matrix stored by rows
  // reads, column-major, as its transpose already; one stored by columns needs op T.
  cublasHandle_t handle = at::cuda::getCurrentCUDABlasHandle();  // on the current stream
  TORCH_CHECK(api->set_math_mode(handle, math_mode_for(dtype)) == CUBLAS_STATUS_SUCCESS,
              "gru_cuda: cublasSetMathMode failed");
  const cublasStatus_t status = api->gemm_ex(
      handle, ob.by_columns ? CUBLAS_OP_T : CUBLAS_OP_N, oa.by_columns ? CUBLAS_OP_T : CUBLAS_OP_N,
      static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), alpha, ob.data, data_type,
      static_cast<int>(ob.ld), oa.data, data_type, static_cast<int>(oa.ld), beta,
      out.data_ptr(), data_type, static_cast<int>(oc.ld), compute, CUBLAS_GEMM_DEFAULT);
  TORCH_CHECK(status == CUBLAS_STATUS_SUCCESS, "gru_cuda: cublasGemmEx failed (status ",
              static_cast<int>(status), ") for a ", m, "x", k, " by ", k, "x", n, " ", dtype,
              " product");
  return true;
}

}  // namespace gru_cuda
