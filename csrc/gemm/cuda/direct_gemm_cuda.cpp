#include "direct_gemm_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <climits>

#include "../direct_gemm_switch.h"
#include "cublas_calls.h"

namespace gru_cuda {
namespace {

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

}  // namespace

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
  if (m == 0 || n == 0) return true;
  direct_gemm_counts().gemms++;
  const GemmScalars scalars(dtype, accumulate);

  // Row-major C = A B is column-major C^T = B^T A^T: B first. A matrix stored by rows
  // reads, column-major, as its transpose already; one stored by columns needs op T.
  cublasHandle_t handle = at::cuda::getCurrentCUDABlasHandle();  // on the current stream
  TORCH_CHECK(api->set_math_mode(handle, math_mode_for(dtype)) == CUBLAS_STATUS_SUCCESS,
              "gru_cuda: cublasSetMathMode failed");
  const cublasStatus_t status = api->gemm_ex(
      handle, ob.by_columns ? CUBLAS_OP_T : CUBLAS_OP_N, oa.by_columns ? CUBLAS_OP_T : CUBLAS_OP_N,
      static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), scalars.alpha(), ob.data,
      data_type, static_cast<int>(ob.ld), oa.data, data_type, static_cast<int>(oa.ld),
      scalars.beta(), out.data_ptr(), data_type, static_cast<int>(oc.ld), compute,
      CUBLAS_GEMM_DEFAULT);
  TORCH_CHECK(status == CUBLAS_STATUS_SUCCESS, "gru_cuda: cublasGemmEx failed (status ",
              static_cast<int>(status), ") for a ", m, "x", k, " by ", k, "x", n, " ", dtype,
              " product");
  return true;
}

}  // namespace gru_cuda
