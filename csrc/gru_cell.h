// Gate math of one GRU element, forward and backward: the single source of truth
// shared by the CPU loops and the CUDA kernels. PyTorch's GRU ("reset after"):
//   r = sigmoid(gx_r + gh_r), z = sigmoid(gx_z + gh_z), n = tanh(gx_n + r * gh_n)
//   h' = (1 - z) * n + z * h
// T is the accumulation type (float for half types). Plain arithmetic only, so the
// same templates serve scalars on the host and on the device.
#pragma once

#include <cmath>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define GRU_HOST_DEVICE __host__ __device__
#else
#define GRU_HOST_DEVICE
#endif

namespace gru_cuda {

// Workspace saved per row and step for the backward: [r, z, n, gh_n, h_prev].
constexpr int kSavedBlocks = 5;

GRU_HOST_DEVICE inline float gru_exp(float x) { return expf(x); }
GRU_HOST_DEVICE inline double gru_exp(double x) { return exp(x); }
GRU_HOST_DEVICE inline float gru_tanh(float x) { return tanhf(x); }
GRU_HOST_DEVICE inline double gru_tanh(double x) { return tanh(x); }

template <typename T>
GRU_HOST_DEVICE inline T gru_sigmoid(T x) {
  return T(1) / (T(1) + gru_exp(-x));
}

template <typename T>
struct GateValues {
  T r, z, n, h_new;
};

template <typename T>
GRU_HOST_DEVICE inline GateValues<T> gru_cell_forward(
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
GRU_HOST_DEVICE inline GateGrads<T> gru_cell_backward(
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

}  // namespace gru_cuda
