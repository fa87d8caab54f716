#include "cublas_calls.h"

#include <ATen/Context.h>
#include <c10/util/Exception.h>
#include <dlfcn.h>
#include <torch/version.h>

#include <string>
#include <type_traits>

namespace gru_cuda {
namespace {

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

}  // namespace

// cuBLAS as torch loaded it (libtorch_cuda links it): the extension needs no link to a
// cuBLAS the toolkit may not ship (the nvidia wheels carry no unversioned library). Only
// that one: another copy would be handed torch's handle, which it does not own.
const CublasEntryPoints* cublas() {
  static const CublasEntryPoints* entry_points = []() -> const CublasEntryPoints* {
    const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* library = dlopen(name.c_str(), RTLD_NOW | RTLD_NOLOAD);
    static CublasEntryPoints found{};
    if (library != nullptr) {
      found = {reinterpret_cast<GemmEx>(dlsym(library, "cublasGemmEx")),
               reinterpret_cast<GemmStridedBatchedEx>(
                   dlsym(library, "cublasGemmStridedBatchedEx")),
               reinterpret_cast<SetMathMode>(dlsym(library, "cublasSetMathMode"))};
    }
    if (found.gemm_ex == nullptr || found.gemm_strided_batched_ex == nullptr ||
        found.set_math_mode == nullptr) {
      TORCH_WARN("gru_cuda: cuBLAS's GEMM entry points not found in ", name,
                 " as torch loaded it; the direct GEMMs fall back to ATen");
      return nullptr;
    }
    return &found;
  }();
  return entry_points;
}

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

// float32's precision is the compute type's alone (a TF32 math mode would override full
// fp32).
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

bool rnn_allows_tf32() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 10)
  return at::globalContext().allowTF32CuDNN(at::Float32Op::RNN);
#else
  return rnn_tf32_by_name(at::globalContext(), 0);
#endif
}

}  // namespace gru_cuda
