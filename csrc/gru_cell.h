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
// moves, so the per-row loops vectorize; error is a few ulp.
namespace detail {

// expm1(x) by its Taylor series to x^8: under 1e-8 relative error for |x| <= ln2/2.
GRU_ALWAYS_INLINE float expm1_taylor(float x) {
  float p = 1.0f / 40320.0f;
  p = p * x + 1.0f / 5040.0f;
  p = p * x + 1.0f / 720.0f;
  p = p * x + 1.0f / 120.0f;
  p = p * x + 1.0f / 24.0f;
  p = p * x + 1.0f / 6.0f;
  p = p * x + 0.5f;
  p = p * x + 1.0f;
  return p * x;
}

// exp(x) = 2^k * exp(r), r = x - k ln2 in [-ln2/2, ln2/2]. The bit trick needs x
// clamped; outside the clamp the result is exp's limit (inf above, 0 below, NaN for NaN),
// so that a non-finite value propagates as in PyTorch's own ops: sigmoid(-inf) is
// exactly 0, and 0 * inf is NaN there too.
GRU_ALWAYS_INLINE float exp_f32(float x) {
  const float c = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float round_magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float k = (c * 1.44269504f + round_magic) - round_magic;
  const float r = (c - k * 0.693145752f) - k * 1.42860677e-6f;  // ln2 split in two
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  const float value = (1.0f + expm1_taylor(r)) * scale;
  const float beyond = x > 0.0f ? std::numeric_limits<float>::infinity() : 0.0f;
  return x != x ? x : (c != x ? beyond : value);
}

// tanh(x) = -expm1(-2|x|) / (2 + expm1(-2|x|)) with the sign of x; expm1 by its series
// near 0 so that small |x| keeps its relative precision.
GRU_ALWAYS_INLINE float tanh_f32(float x) {
  const float a = x < 0.0f ? -x : x;
  const float t = -2.0f * a;
  const float e = exp_f32(t);  // computed on both paths so the select vectorizes
  const float em1 = a < 0.17f ? expm1_taylor(t) : e - 1.0f;
  const float y = -em1 / (2.0f + em1);
  return x < 0.0f ? -y : y;
}

// The same for float64, a few ulp: expm1 by its series to x^13 (under 1e-17 relative for
// |x| <= ln2/2), 2^k from the bits the rounding constant leaves (no double-to-int64
// conversion, which AVX2 lacks). Beyond [-708, 709] the result is exp's limit, where
// libm's would be within 1e-307 of it (a subnormal or the last normal values).
GRU_ALWAYS_INLINE double expm1_taylor(double x) {
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * x + 1.0 / 479001600.0;
  p = p * x + 1.0 / 39916800.0;
  p = p * x + 1.0 / 3628800.0;
  p = p * x + 1.0 / 362880.0;
  p = p * x + 1.0 / 40320.0;
  p = p * x + 1.0 / 5040.0;
  p = p * x + 1.0 / 720.0;
  p = p * x + 1.0 / 120.0;
  p = p * x + 1.0 / 24.0;
  p = p * x + 1.0 / 6.0;
  p = p * x + 0.5;
  p = p * x + 1.0;
  return p * x;
}

GRU_ALWAYS_INLINE double exp_f64(double x) {
  const double c = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
  const double round_magic = 6755399441055744.0;  // 1.5 * 2^52: k lands in the low bits
  const double shifted = c * 1.4426950408889634 + round_magic;
  const double k = shifted - round_magic;
  // ln2 split so that k * ln2_hi is exact (its low 32 bits are zeros)
  const double r = (c - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
  int64_t k_bits;
  std::memcpy(&k_bits, &shifted, sizeof(k_bits));
  const int64_t bits = (k_bits - int64_t{0x4338000000000000} + 1023) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  const double value = (1.0 + expm1_taylor(r)) * scale;
  const double beyond = x > 0.0 ? std::numeric_limits<double>::infinity() : 0.0;
  return x != x ? x : (c != x ? beyond : value);
}

GRU_ALWAYS_INLINE double tanh_f64(double x) {
  const double a = x < 0.0 ? -x : x;
  const double t = -2.0 * a;
  const double e = exp_f64(t);
  const double em1 = a < 0.17 ? expm1_taylor(t) : e - 1.0;
  const double y = -em1 / (2.0 + em1);
  return x < 0.0 ? -y : y;
}

}  // namespace detail

GRU_ALWAYS_INLINE float gru_exp(float x) { return detail::exp_f32(x); }
GRU_ALWAYS_INLINE float gru_tanh(float x) { return detail::tanh_f32(x); }
GRU_ALWAYS_INLINE double gru_exp(double x) { return detail::exp_f64(x); }
GRU_ALWAYS_INLINE double gru_tanh(double x) { return detail::tanh_f64(x); }
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
