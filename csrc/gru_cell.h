// Gate math of one GRU element, forward and backward: the single source of truth
// shared by the CPU loops and the CUDA kernels. PyTorch's GRU ("reset after"):
//   r = sigmoid(gx_r + gh_r), z = sigmoid(gx_z + gh_z), n = tanh(gx_n + r * gh_n)
//   h' = (1 - z) * n + z * h
// T is the accumulation type (float for half types). Plain arithmetic only, so the
// same templates serve scalars on the host and on the device.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define GRU_HOST_DEVICE __host__ __device__
#else
#define GRU_HOST_DEVICE
#endif

// The CPU row loops vectorize only if the element step and the gate math are inlined
// into them; GCC's heuristics otherwise keep some instantiations as calls (the inference
// one, half types; the training forward in bfloat16 called gru_cell_forward).
#if defined(__GNUC__) || defined(__clang__)
#define GRU_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define GRU_ALWAYS_INLINE inline
#endif

namespace gru_cuda {

#if !defined(__CUDA_ARCH__) && !defined(__HIP_DEVICE_COMPILE__)
// Host float32 and float64: libm's exp/tanh are calls the compiler cannot vectorize, and
// they cost more than the rest of the step together. These use only arithmetic and bit
// moves, so the per-row loops vectorize; error is a few ulp (float64: 2.2 at most).
namespace detail {

// Per type: the series' degree (its error under 1e-8 in float, 1e-17 in float64 relative
// for |x| <= ln2/2); the clamp that keeps 2^k a normal number; 1.5 * 2^mantissa bits,
// which rounds to an integer k when added and leaves k in the low bits (no float-to-int
// conversion, which AVX2 lacks for float64); ln2 split so that k * ln2_hi is exact.
template <typename T>
struct ExpForm;
template <>
struct ExpForm<float> {
  using Bits = int32_t;
  static constexpr int kDegree = 8, kMantissa = 23, kBias = 127;
  static constexpr float kLow = -87.0f, kHigh = 88.0f, kRound = 12582912.0f;
  static constexpr Bits kRoundBits = 0x4B400000;
  static constexpr float kLog2e = 1.44269504f, kLn2Hi = 0.693145752f, kLn2Lo = 1.42860677e-6f;
};
template <>
struct ExpForm<double> {
  using Bits = int64_t;
  static constexpr int kDegree = 13, kMantissa = 52, kBias = 1023;
  static constexpr double kLow = -708.0, kHigh = 709.0, kRound = 6755399441055744.0;
  static constexpr Bits kRoundBits = 0x4338000000000000;
  static constexpr double kLog2e = 1.4426950408889634, kLn2Hi = 6.93147180369123816490e-01,
                          kLn2Lo = 1.90821492927058770002e-10;
};

constexpr double kInverseFactorial[14] = {
    1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
    1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};

// expm1(x) by its Taylor series to x^kDegree.
template <typename T>
GRU_ALWAYS_INLINE T expm1_taylor(T x) {
  T p = T(kInverseFactorial[ExpForm<T>::kDegree]);
#pragma GCC unroll 16
  for (int n = ExpForm<T>::kDegree - 1; n >= 1; --n) p = p * x + T(kInverseFactorial[n]);
  return p * x;
}

// exp(x) = 2^k * exp(r), r = x - k ln2 in [-ln2/2, ln2/2]. The bit trick needs x
// clamped; outside the clamp the result is exp's limit (inf above, 0 below, NaN for NaN),
// so that a non-finite value propagates as in PyTorch's own ops: sigmoid(-inf) is
// exactly 0, and 0 * inf is NaN there too. libm's would be within 1e-37 (float64:
// 1e-307) of it there.
template <typename T>
GRU_ALWAYS_INLINE T exp_approx(T x) {
  using F = ExpForm<T>;
  using Bits = typename F::Bits;
  const T c = x < F::kLow ? F::kLow : (x > F::kHigh ? F::kHigh : x);
  const T shifted = c * F::kLog2e + F::kRound;
  const T k = shifted - F::kRound;
  const T r = (c - k * F::kLn2Hi) - k * F::kLn2Lo;
  Bits k_bits;
  std::memcpy(&k_bits, &shifted, sizeof(k_bits));
  const Bits bits = (k_bits - F::kRoundBits + F::kBias) << F::kMantissa;
  T scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  const T value = (T(1) + expm1_taylor(r)) * scale;
  const T beyond = x > T(0) ? std::numeric_limits<T>::infinity() : T(0);
  return x != x ? x : (c != x ? beyond : value);
}

// tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)) with the sign of x; expm1 by its series
// near 0 so that small |x| keeps its relative precision.
template <typename T>
GRU_ALWAYS_INLINE T tanh_approx(T x) {
  const T a = x < T(0) ? -x : x;
  const T t = T(-2) * a;
  const T e = exp_approx(t);  // computed on both paths so the select vectorizes
  const T em1 = a < T(0.17) ? expm1_taylor(t) : e - T(1);
  const T y = -em1 / (T(2) + em1);
  return x < T(0) ? -y : y;
}

}  // namespace detail

GRU_ALWAYS_INLINE float gru_exp(float x) { return detail::exp_approx(x); }
GRU_ALWAYS_INLINE float gru_tanh(float x) { return detail::tanh_approx(x); }
GRU_ALWAYS_INLINE double gru_exp(double x) { return detail::exp_approx(x); }
GRU_ALWAYS_INLINE double gru_tanh(double x) { return detail::tanh_approx(x); }
#else
__device__ inline float gru_exp(float x) { return expf(x); }
__device__ inline float gru_tanh(float x) { return tanhf(x); }
__device__ inline double gru_exp(double x) { return exp(x); }
__device__ inline double gru_tanh(double x) { return tanh(x); }
#endif

template <typename T>
GRU_HOST_DEVICE GRU_ALWAYS_INLINE T gru_sigmoid(T x) {
  return T(1) / (T(1) + gru_exp(-x));
}

template <typename T>
struct GateValues {
  T r, z, n, h_new;
};

template <typename T>
GRU_HOST_DEVICE GRU_ALWAYS_INLINE GateValues<T> gru_cell_forward(
    T gx_r, T gx_z, T gx_n, T gh_r, T gh_z, T gh_n, T h) {
  GateValues<T> g;
  g.r = gru_sigmoid(gx_r + gh_r);
  g.z = gru_sigmoid(gx_z + gh_z);
  g.n = gru_tanh(gx_n + g.r * gh_n);
  g.h_new = g.n + g.z * (h - g.n);
  return g;
}

template <typename T>
struct GateGrads {
  T dgx_r, dgx_z, dgx_n;  // gradient of the input projection gx
  T dgh_n;                // gh's gradient differs from gx's only in the n block
  T dh_direct;            // the part of dh_prev that does not go through W_hh
};

// dh_new: gradient reaching h' (output gradient plus the carried state gradient).
template <typename T>
GRU_HOST_DEVICE GRU_ALWAYS_INLINE GateGrads<T> gru_cell_backward(
    T dh_new, T h_prev, T r, T z, T n, T gh_n) {
  const T dn_pre = dh_new * (T(1) - z) * (T(1) - n * n);
  const T dz_pre = dh_new * (h_prev - n) * z * (T(1) - z);
  const T dr_pre = dn_pre * gh_n * r * (T(1) - r);
  GateGrads<T> g;
  g.dgx_r = dr_pre;
  g.dgx_z = dz_pre;
  g.dgx_n = dn_pre;
  g.dgh_n = dn_pre * r;
  g.dh_direct = dh_new * z;
  return g;
}

// Blocks (H each) of the workspace row saved per row, direction and step for the
// backward. h_prev is kept because a row's previous state is not always the previous
// output row (a reverse-direction row joins with its own h0).
enum SavedBlock : int { kSavedR = 0, kSavedZ, kSavedN, kSavedGhN, kSavedHPrev, kSavedBlocks };
// Their names in that order, exported to Python (gru_cuda._ops.SAVED_BLOCK_NAMES).
constexpr const char* kSavedBlockNames = "r,z,n,gh_n,h_prev";

// One element (unit j of one row) of a forward step, the whole of it. Row pointers, gate
// blocks H apart: gx_row (3H, x W_ih^T without b_ih), b_ih and b_hh (3H each, zeros when
// the layer has no bias; adding them here saves the GEMMs a pass), h_prev_row (H),
// h_next_row (H, may be h_prev_row: updated in place), out_row (H), saved_row
// (kSavedBlocks * H, written only when kSave). gh: this element's h W_hh^T (without
// b_hh), its r, z, n values gh_block apart (H in a (rows, 3H) buffer; a persistent
// kernel keeps its own units' values closer). acc_t: the math type.
template <typename acc_t, bool kSave, typename scalar_t, typename gh_t>
GRU_HOST_DEVICE GRU_ALWAYS_INLINE void gru_forward_element(
    const scalar_t* gx_row, const gh_t* gh, int64_t gh_block, const scalar_t* b_ih,
    const scalar_t* b_hh, const scalar_t* h_prev_row, scalar_t* h_next_row, scalar_t* out_row,
    scalar_t* saved_row, int64_t j, int64_t H) {
  const acc_t h_prev = acc_t(h_prev_row[j]);
  const acc_t gh_n = acc_t(gh[2 * gh_block]) + acc_t(b_hh[2 * H + j]);
  const GateValues<acc_t> g = gru_cell_forward<acc_t>(
      acc_t(gx_row[j]) + acc_t(b_ih[j]), acc_t(gx_row[H + j]) + acc_t(b_ih[H + j]),
      acc_t(gx_row[2 * H + j]) + acc_t(b_ih[2 * H + j]), acc_t(gh[0]) + acc_t(b_hh[j]),
      acc_t(gh[gh_block]) + acc_t(b_hh[H + j]), gh_n, h_prev);
  if (kSave) {
    saved_row[kSavedR * H + j] = scalar_t(g.r);
    saved_row[kSavedZ * H + j] = scalar_t(g.z);
    saved_row[kSavedN * H + j] = scalar_t(g.n);
    saved_row[kSavedGhN * H + j] = scalar_t(gh_n);
    saved_row[kSavedHPrev * H + j] = scalar_t(h_prev);
  }
  h_next_row[j] = scalar_t(g.h_new);
  out_row[j] = scalar_t(g.h_new);
}

// One element of a backward step. grad_out_row (H): the output's gradient; dh_row (H):
// in, the state gradient carried from the next step; out, its part that skips W_hh.
// Written: dgx_row (3H), the gradient of gx; dgh, this element's gradient of gh for the
// recurrent product, its r, z, n values dgh_block apart (H in a (rows, 3H) buffer, as
// gru_forward_element's gh); dgh_n_row (H), its n block, kept for dW_hh (its r and z
// blocks equal dgx's).
template <typename acc_t, typename scalar_t>
GRU_HOST_DEVICE GRU_ALWAYS_INLINE void gru_backward_element(
    const scalar_t* grad_out_row, scalar_t* dh_row, const scalar_t* saved_row, scalar_t* dgx_row,
    scalar_t* dgh, int64_t dgh_block, scalar_t* dgh_n_row, int64_t j, int64_t H) {
  const acc_t dh_new = acc_t(grad_out_row[j]) + acc_t(dh_row[j]);
  const GateGrads<acc_t> g = gru_cell_backward<acc_t>(
      dh_new, acc_t(saved_row[kSavedHPrev * H + j]), acc_t(saved_row[kSavedR * H + j]),
      acc_t(saved_row[kSavedZ * H + j]), acc_t(saved_row[kSavedN * H + j]),
      acc_t(saved_row[kSavedGhN * H + j]));
  dgx_row[j] = scalar_t(g.dgx_r);
  dgh[0] = scalar_t(g.dgx_r);
  dgx_row[H + j] = scalar_t(g.dgx_z);
  dgh[dgh_block] = scalar_t(g.dgx_z);
  dgx_row[2 * H + j] = scalar_t(g.dgx_n);
  dgh[2 * dgh_block] = scalar_t(g.dgh_n);
  dgh_n_row[j] = scalar_t(g.dgh_n);
  dh_row[j] = scalar_t(g.dh_direct);
}

}  // namespace gru_cuda
