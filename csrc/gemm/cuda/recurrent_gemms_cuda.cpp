#include "recurrent_gemms_cuda.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <climits>

#include "../direct_gemm_switch.h"
#include "cublas_calls.h"

namespace gru_cuda {
namespace {

// A step's product for one direction, column-major as cuBLAS reads the row-major
// buffers: forward gh^T (3H x n) = W_hh (op T on its stored W_hh^T) h^T; backward
// dh^T (H x n) += W_hh^T dgh^T. n is the step's live rows.
struct ProductShape {
  cublasOperation_t op_w;
  int m, k;                 // C's rows and the inner size, in cuBLAS's terms
  int ld_in, ld_out;        // h (dgh) and gh (dh)
  long long in_stride, out_stride;  // from direction 0's rows to direction 1's
};

ProductShape product_shape(bool backward, int64_t N, int64_t H) {
  const int64_t G = 3 * H;
  if (backward) {
    return {CUBLAS_OP_N, static_cast<int>(H), static_cast<int>(G), static_cast<int>(G),
            static_cast<int>(H), N * G, N * H};
  }
  return {CUBLAS_OP_T, static_cast<int>(G), static_cast<int>(H), static_cast<int>(H),
          static_cast<int>(G), N * H, N * G};
}

class RecurrentGemmsCuda final : public RecurrentGemms {
 public:
  RecurrentGemmsCuda(const CublasEntryPoints& api, const RecurrentGemmArgs& args,
                     cudaDataType data_type, cublasComputeType_t compute)
      : api_(api),
        shape_(product_shape(args.backward, args.state.size(1), args.state.size(2))),
        scalars_(args.state.scalar_type(), /*accumulate=*/args.backward),
        data_type_(data_type),
        compute_(compute),
        backward_(args.backward),
        ld_w_(static_cast<int>(args.state.size(2))) {
    const at::Tensor& in = args.backward ? args.workspace : args.state;
    const at::Tensor& out = args.backward ? args.state : args.workspace;
    const int64_t size = args.state.element_size();
    for (size_t d = 0; d < args.w_hh.size(); ++d) {
      w_[d] = args.w_hh[d].const_data_ptr();
      in_[d] = static_cast<const char*>(in.const_data_ptr()) + d * shape_.in_stride * size;
      out_[d] = static_cast<char*>(out.data_ptr()) + d * shape_.out_stride * size;
    }
    // Both directions in one call where W_hh[1] lies a whole number of elements after
    // W_hh[0] (cuBLAS documents no negative strides).
    if (args.w_hh.size() == 2) {
      const auto apart = reinterpret_cast<intptr_t>(w_[1]) - reinterpret_cast<intptr_t>(w_[0]);
      if (apart > 0 && apart % size == 0) w_stride_ = apart / size;
    }
    // Once for the loop: the handle on the current stream, in the dtype's math mode.
    handle_ = at::cuda::getCurrentCUDABlasHandle();
    TORCH_CHECK(api_.set_math_mode(handle_, math_mode_for(args.state.scalar_type())) ==
                    CUBLAS_STATUS_SUCCESS,
                "gru_cuda: cublasSetMathMode failed");
  }

  void run(int64_t first, int64_t end, const int64_t* rows) override {
    // Both directions at once: the forward over the larger of their live rows (the extra
    // rows of gh are never read); the backward accumulates into dh, so only where the
    // rows agree.
    if (end - first == 2 && w_stride_ > 0 && (!backward_ || rows[0] == rows[1])) {
      const int n = static_cast<int>(std::max(rows[0], rows[1]));
      if (n == 0) return;
      check(api_.gemm_strided_batched_ex(
                handle_, shape_.op_w, CUBLAS_OP_N, shape_.m, n, shape_.k, scalars_.alpha(),
                w_[0], data_type_, ld_w_, w_stride_, in_[0], data_type_, shape_.ld_in,
                shape_.in_stride, scalars_.beta(), out_[0], data_type_, shape_.ld_out,
                shape_.out_stride, 2, compute_, CUBLAS_GEMM_DEFAULT),
            "cublasGemmStridedBatchedEx", n);
      direct_gemm_counts().gemms++;
      direct_gemm_counts().batched++;
      return;
    }
    for (int64_t d = first; d < end; ++d) {
      const int n = static_cast<int>(rows[d]);
      if (n == 0) continue;
      check(api_.gemm_ex(handle_, shape_.op_w, CUBLAS_OP_N, shape_.m, n, shape_.k,
                         scalars_.alpha(), w_[d], data_type_, ld_w_, in_[d], data_type_,
                         shape_.ld_in, scalars_.beta(), out_[d], data_type_, shape_.ld_out,
                         compute_, CUBLAS_GEMM_DEFAULT),
            "cublasGemmEx", n);
      direct_gemm_counts().gemms++;
    }
  }

 private:
  void check(cublasStatus_t status, const char* call, int n) const {
    TORCH_CHECK(status == CUBLAS_STATUS_SUCCESS, "gru_cuda: ", call, " failed (status ",
                static_cast<int>(status), ") in a recurrent ", backward_ ? "backward" : "forward",
                " step of ", n, " rows, ", shape_.m, " x ", shape_.k);
  }

  const CublasEntryPoints& api_;
  const ProductShape shape_;
  const GemmScalars scalars_;
  const cudaDataType data_type_;
  const cublasComputeType_t compute_;
  const bool backward_;
  const int ld_w_;  // W_hh's rows are H apart
  const void* w_[2] = {nullptr, nullptr};
  const void* in_[2] = {nullptr, nullptr};
  void* out_[2] = {nullptr, nullptr};
  long long w_stride_ = 0;  // 0: one call per direction
  cublasHandle_t handle_ = nullptr;
};

// The loop's buffers as the per-step driver makes them, W_hh in the state's dtype and
// device, and sizes within cuBLAS's 32-bit arguments.
bool loop_fits(const RecurrentGemmArgs& args) {
  const at::Tensor& state = args.state;
  const int64_t D = state.dim() == 3 ? state.size(0) : 0;
  if (D < 1 || D > 2 || static_cast<int64_t>(args.w_hh.size()) != D) return false;
  const int64_t N = state.size(1), H = state.size(2);
  if (H == 0 || 3 * H > INT_MAX || N > INT_MAX || !state.is_contiguous() ||
      !args.workspace.is_contiguous() || !args.workspace.sizes().equals({D, N, 3 * H}) ||
      args.workspace.scalar_type() != state.scalar_type()) {
    return false;
  }
  return std::all_of(args.w_hh.begin(), args.w_hh.end(), [&](const at::Tensor& w) {
    return w.is_contiguous() && w.sizes().equals({3 * H, H}) &&
           w.scalar_type() == state.scalar_type() && w.device() == state.device();
  });
}

}  // namespace

std::unique_ptr<RecurrentGemms> recurrent_gemms_cuda(const RecurrentGemmArgs& args) {
  if (!direct_gemm_enabled().load()) return nullptr;
  const CublasEntryPoints* api = cublas();
  cudaDataType data_type;
  cublasComputeType_t compute;
  if (api == nullptr || !loop_fits(args) ||
      !cublas_types(args.state.scalar_type(), data_type, compute)) {
    direct_gemm_counts().declined++;
    return nullptr;
  }
  return std::make_unique<RecurrentGemmsCuda>(*api, args, data_type, compute);
}

}  // namespace gru_cuda
