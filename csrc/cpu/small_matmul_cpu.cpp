// out = a @ w^T for an `a` of a few rows (a decoding step's batch), on the CPU, where
// BLAS's GEMM costs more in its dispatch and small-n path than plain dot products do.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>

#include "../gru_cell.h"
#include "small_matmul_cpu.h"
#include "target_clones.h"

namespace gru_cuda {
namespace {

// Measured against MKL on an AMD EPYC: faster up to 4 rows at every size, up to 8 with
// K >= 256; with 8 rows and K = 128 each dot is too short to pay for its final sum.
// bfloat16 against oneDNN's bfloat16 dot products, in a GRUCell step: 1.6-2.7x faster at
// 1 row and 1.2-2.4x at 2 (H = 128-512), but 0.5-1.4x at 4.
bool takes(int64_t n, int64_t K, at::ScalarType dtype) {
  if (dtype == at::kBFloat16) return n <= 2;
  return n <= 4 || (n <= 8 && K >= 256);
}

// Products computed here since the process started, so that tests see this path ran.
std::atomic<int64_t> products{0};

// out[c][r] = w[r] . a[c] for R rows of w and C rows of a, K long: R x C accumulators of
// a vector's width each, so that every loaded chunk of w serves C rows of a. Each chunk
// also prefetches the same chunk of the next R rows (w_next, or nullptr at the end):
// without it, weights streamed from L3 (H >= 256) ran 10-25% slower. Sums in A.
template <typename T, int R, int C, typename A = at::opmath_type<T>>
GRU_ALWAYS_INLINE void dot_block(const T* __restrict w, const T* w_next, const T* __restrict a,
                                 int64_t lda, T* __restrict out, int64_t ldo, int64_t K) {
  constexpr int L = 64 / sizeof(A);  // one 512-bit vector of sums
  A acc[R][C][L];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      for (int l = 0; l < L; ++l) acc[r][c][l] = A(0);
  int64_t k = 0;
  for (; k + L <= K; k += L) {
    if (w_next != nullptr) {
      for (int r = 0; r < R; ++r) __builtin_prefetch(w_next + r * K + k);
    }
    for (int r = 0; r < R; ++r) {
      for (int c = 0; c < C; ++c) {
#pragma omp simd
        for (int l = 0; l < L; ++l) {
          acc[r][c][l] += A(w[r * K + k + l]) * A(a[c * lda + k + l]);
        }
      }
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      A* lanes = acc[r][c];
#pragma GCC unroll 8
      for (int width = L / 2; width >= 1; width /= 2) {  // a tree, which vectorizes
#pragma omp simd
        for (int l = 0; l < width; ++l) lanes[l] += lanes[l + width];
      }
      A sum = lanes[0];
      for (int64_t kk = k; kk < K; ++kk) sum += A(w[r * K + kk]) * A(a[c * lda + kk]);
      out[c * ldo + r] = T(sum);
    }
  }
}

// R rows of w, from w_r, against all n rows of a, four of a's rows at a time (16
// accumulators of 32 vector registers with R = 4).
template <typename T, int R>
GRU_ALWAYS_INLINE void rows_against_a(const T* w_r, const T* w_next, const T* a, int64_t lda,
                                      int64_t n, T* out_r, int64_t ldo, int64_t K) {
  int64_t c = 0;
  for (; c + 4 <= n; c += 4) {
    dot_block<T, R, 4>(w_r, w_next, a + c * lda, lda, out_r + c * ldo, ldo, K);
  }
  for (; c + 2 <= n; c += 2) {
    dot_block<T, R, 2>(w_r, w_next, a + c * lda, lda, out_r + c * ldo, ldo, K);
  }
  for (; c < n; ++c) dot_block<T, R, 1>(w_r, w_next, a + c * lda, lda, out_r + c * ldo, ldo, K);
}

// Rows [begin, end) of w against all n rows of a, four rows of w at a time (measured
// best among 2, 4 and 8), the last few one at a time.
template <typename T>
GRU_CPU_CLONES void matmul_rows(const T* w, int64_t K, const T* a, int64_t lda, int64_t n,
                                T* out, int64_t ldo, int64_t begin, int64_t end) {
  constexpr int R = 4;
  int64_t r = begin;
  for (; r + R <= end; r += R) {
    const T* w_next = r + 2 * R <= end ? w + (r + R) * K : nullptr;
    rows_against_a<T, R>(w + r * K, w_next, a, lda, n, out + r, ldo, K);
  }
  for (; r < end; ++r) rows_against_a<T, 1>(w + r * K, nullptr, a, lda, n, out + r, ldo, K);
}

}  // namespace

bool small_matmul_cpu(const at::Tensor& a, const at::Tensor& w, const at::Tensor& out) {
  const int64_t n = a.size(0), K = a.size(1), M = w.size(0);
  const at::ScalarType dtype = a.scalar_type();
  if (!takes(n, K, dtype) ||
      (dtype != at::kFloat && dtype != at::kDouble && dtype != at::kBFloat16) ||
      w.scalar_type() != dtype || out.scalar_type() != dtype || a.stride(1) != 1 ||
      !w.is_contiguous() || out.stride(1) != 1) {
    return false;
  }
  products.fetch_add(1, std::memory_order_relaxed);
  if (n == 0 || M == 0) return true;
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, dtype, "small_matmul_cpu", [&] {
    const scalar_t* a_data = a.const_data_ptr<scalar_t>();
    const scalar_t* w_data = w.const_data_ptr<scalar_t>();
    scalar_t* out_data = out.mutable_data_ptr<scalar_t>();
    // A task of at least ~64k multiply-adds, so threads join only where they pay.
    const int64_t per_row = std::max<int64_t>(K * n, 1);
    const int64_t grain = std::max<int64_t>(8, (int64_t{1} << 16) / per_row);
    const auto rows = [&](int64_t begin, int64_t end) {
      matmul_rows(w_data, K, a_data, a.stride(0), n, out_data, out.stride(0), begin, end);
    };
    if (M <= grain || at::get_num_threads() == 1) {
      rows(0, M);  // parallel_for's own checks cost what a small product does
    } else {
      at::parallel_for(0, M, grain, rows);
    }
  });
  return true;
}

TORCH_LIBRARY_FRAGMENT(gru_cuda, m) {
  m.def("small_matmul_count() -> int", [] { return products.load(); });
}

}  // namespace gru_cuda
