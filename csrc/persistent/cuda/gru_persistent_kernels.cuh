// The persistent layer kernels: one cooperative launch runs a layer's whole time loop.
// Each block owns k hidden units of one direction and keeps their part of W_hh in shared
// memory for the whole sequence (the forward its 3k gate rows, the backward its k
// columns); the state is exchanged through global memory (L2) with one grid barrier per
// step. The gate math is gru_cell.h's element step, as in the per-step kernels.
// Included by gru_persistent_launch.cuh, and by the tests' CPU emulation (a thread per
// CUDA thread), which supplies the CUDA built-ins and its own shared memory.
#pragma once

#include <ATen/OpMathType.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cooperative_groups.h>

#include <cstring>

#include "../../gru_cell.h"
#include "../persistent_args.h"
#include "../persistent_plan.h"
#include "mma_m16n8k16.cuh"

#ifndef GRU_DYNAMIC_SHARED_FLOATS
#define GRU_DYNAMIC_SHARED_FLOATS(name) extern __shared__ __align__(16) float name[]
#endif

namespace gru_cuda {
namespace persistent_kernels {

namespace cg = cooperative_groups;

// L1 is not coherent across SMs: what other blocks wrote since the last grid barrier is
// read through L2.
template <typename T>
__device__ __forceinline__ float load_cg(const T* p) {
  static_assert(sizeof(T) == 2 || sizeof(T) == 4, "float, half or bfloat16");
  T value;
  if constexpr (sizeof(T) == 2) {
    const unsigned short bits = __ldcg(reinterpret_cast<const unsigned short*>(p));
    std::memcpy(&value, &bits, sizeof(bits));
  } else {
    const unsigned int bits = __ldcg(reinterpret_cast<const unsigned int*>(p));
    std::memcpy(&value, &bits, sizeof(bits));
  }
  return static_cast<float>(value);
}

// A value of the exchanged state (or its gradient) in float: from L2 where blocks exchange
// it through global memory (the grid form), a plain load where each block holds its own
// copy in shared memory (the cluster form).
template <bool kShared, typename T>
__device__ __forceinline__ float load_state(const T* p) {
  if constexpr (kShared) {
    return static_cast<float>(*p);
  } else {
    return load_cg(p);
  }
}

// One exchange of warp_sums: lanes with kOffset set keep the upper kHalf values and the
// others the lower, each adding its partner's; then the next exchange, on half as many.
template <int kValues, int kHalf, int kOffset>
__device__ __forceinline__ void fold_halves(float (&v)[kValues], int lane) {
  if constexpr (kHalf >= 1) {
    const bool upper = (lane & kOffset) != 0;
#pragma unroll
    for (int j = 0; j < kHalf; ++j) {
      const float keep = upper ? v[j + kHalf] : v[j];
      const float send = upper ? v[j] : v[j + kHalf];
      v[j] = keep + __shfl_xor_sync(0xffffffffu, send, kOffset);
    }
    fold_halves<kValues, kHalf / 2, kOffset / 2>(v, lane);
  }
}

// The warp's sums of kValues values at once, in kValues - 1 + 5 - log2(kValues) shuffles
// instead of 5 kValues: each exchange halves the values a lane keeps. Returns the sum of
// v[lane / (32 / kValues)]; v is clobbered.
template <int kValues>
__device__ __forceinline__ float warp_sums(float (&v)[kValues], int lane) {
  static_assert(kValues >= 1 && kValues <= 32 && (kValues & (kValues - 1)) == 0,
                "a power of two up to 32");
  fold_halves<kValues, kValues / 2, 16>(v, lane);
  float total = v[0];
#pragma unroll
  for (int offset = 16 / kValues; offset > 0; offset >>= 1) {
    total += __shfl_xor_sync(0xffffffffu, total, offset);
  }
  return total;
}

// Starts bringing p's line into L1. For a later step's inputs, which the kernel only
// reads: their latency passes while the block waits at a barrier. A no-op off the GPU.
template <typename T>
__device__ __forceinline__ void prefetch_l1(const T* p) {
#if defined(__CUDA_ARCH__)
  asm volatile("prefetch.global.L1 [%0];" ::"l"(p));
#else
  (void)p;
#endif
}

// The backward's per-element inputs of a row (grad_out and the saved blocks) for unit u.
template <typename T>
__device__ __forceinline__ void prefetch_backward_inputs(const T* grad_out_row,
                                                         const T* saved_row, int64_t u,
                                                         int64_t H) {
  prefetch_l1(grad_out_row + u);
#pragma unroll
  for (int b = 0; b < kSavedBlocks; ++b) prefetch_l1(saved_row + b * H + u);
}

struct StepRows {
  int64_t t, live, first;  // the time step, its live rows (a prefix), its first row
};

// Elements from one row of the layer's tensors to the next, both directions side by side:
// gx and dgx (3H a direction); out, grad_out and dgh_n (H); saved (kSavedBlocks H).
struct RowStrides {
  int64_t gx, out, saved;
};
__device__ __forceinline__ RowStrides row_strides(const PersistentShape& s) {
  return {s.D * 3 * s.H, s.D * s.H, s.D * kSavedBlocks * s.H};
}

// This block's direction and hidden units [u0, u0 + units) (k each but in the last block).
// The kernels index within a step in 32 bits (a 64-bit divide costs tens of instructions):
// rows * units, H * 3H and N * 3H all stay far below 2^31; offsets of whole rows stay 64-bit.
struct BlockUnits {
  int d, u0, units;
};

__device__ __forceinline__ BlockUnits block_units(const PersistentShape& s) {
  const int per_direction = static_cast<int>(s.blocks_per_direction);
  const int k = static_cast<int>(s.units_per_block), H = static_cast<int>(s.H);
  const int d = blockIdx.x / per_direction, u0 = (blockIdx.x % per_direction) * k;
  return {d, u0, k < H - u0 ? k : H - u0};
}

__device__ __forceinline__ StepRows step_rows(const PersistentShape& s, int64_t i, int64_t d) {
  const int64_t t = d == 0 ? i : s.T - 1 - i;
  return {t, s.batch_sizes != nullptr ? s.batch_sizes[t] : s.N,
          s.offsets != nullptr ? s.offsets[t] : t * s.N};
}

// *p read as a V, which must be aligned to sizeof(V) (the CPU emulation checks it).
template <typename V, typename T>
__device__ __forceinline__ V load_as(const T* p) {
#if defined(GRU_CUDA_EMULATION)
  emulated_check_aligned(p, sizeof(V));
#endif
  return *reinterpret_cast<const V*>(p);
}

// Two 16-bit values as one register, the lower first; `p` 4-byte aligned.
template <typename T>
__device__ __forceinline__ uint32_t load_pair(const T* p) {
  return load_as<uint32_t>(p);
}
template <typename T>
__device__ __forceinline__ uint32_t load_pair_cg(const T* p) {
  return __ldcg(reinterpret_cast<const unsigned int*>(p));
}

// acc += A B on tensor cores for one 16x8 tile: A (16 x K) from shared memory, row r at
// a + r * a_row; B (K x 8) column n at b + n * b_row, zero where !b_live (this lane's
// column is g = lane / 4), read from L2, or with kSharedB from shared memory. K a
// multiple of 16 (of 8 in TF32). float32 A values are stored rounded to TF32. Two
// accumulator chains take alternate k steps: a chain of dependent mma.sync waits each
// one's latency, and a block's tiles are few (6 gate-row tiles at H=256 in clusters of 8).
template <bool kSharedB = false, typename scalar_t>
__device__ __forceinline__ void mma_tile(const scalar_t* a, int a_row, const scalar_t* b,
                                         int b_row, bool b_live, int K, int lane,
                                         float (&acc)[4]) {
  constexpr bool kTf32 = sizeof(scalar_t) == 4;
  constexpr int kStep = kTf32 ? 8 : 16;
  const int g = lane / 4, t = lane % 4, k_lane = kTf32 ? t : 2 * t;
  const scalar_t* a_top = a + g * a_row + k_lane;  // A's rows g and g + 8
  const scalar_t* a_bottom = a_top + 8 * a_row;
  const scalar_t* b_col = b + g * b_row + k_lane;  // B's column g
  const auto step = [&](float(&chain)[4], int k0) {
    if constexpr (kTf32) {
      const auto bits = [](const scalar_t* p) { return load_as<uint32_t>(p); };
      const uint32_t a_frag[4] = {bits(a_top + k0), bits(a_bottom + k0), bits(a_top + k0 + 4),
                                  bits(a_bottom + k0 + 4)};
      const uint32_t b_frag[2] = {b_live ? to_tf32(load_state<kSharedB>(b_col + k0)) : 0u,
                                  b_live ? to_tf32(load_state<kSharedB>(b_col + k0 + 4)) : 0u};
      mma_m16n8k8_tf32(chain, a_frag, b_frag, chain);
    } else {
      const auto b_pair = [&](const scalar_t* p) {
        if constexpr (kSharedB) {
          return load_pair(p);
        } else {
          return load_pair_cg(p);
        }
      };
      const uint32_t a_frag[4] = {load_pair(a_top + k0), load_pair(a_bottom + k0),
                                  load_pair(a_top + k0 + 8), load_pair(a_bottom + k0 + 8)};
      const uint32_t b_frag[2] = {b_live ? b_pair(b_col + k0) : 0u,
                                  b_live ? b_pair(b_col + k0 + 8) : 0u};
      mma_m16n8k16<scalar_t>(chain, a_frag, b_frag, chain);
    }
  };
  float other[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  int k0 = 0;
  for (; k0 + 2 * kStep <= K; k0 += 2 * kStep) {
    step(acc, k0);
    step(other, k0 + kStep);
  }
  if (k0 < K) step(acc, k0);
#pragma unroll
  for (int i = 0; i < 4; ++i) acc[i] += other[i];
}

// C = A B for A's m_tiles tiles of 16 rows (a_row apart) and B's live columns (b_row
// apart, in tiles of 8), K deep, a warp a tile at a time (mma_tile); store(m, n, C[m][n])
// for each live column n.
template <bool kSharedB, typename scalar_t, typename Store>
__device__ __forceinline__ void mma_tiles(const scalar_t* a, int a_row, int m_tiles,
                                          const scalar_t* b, int b_row, int live, int K,
                                          int lane, int warp, int warps, const Store& store) {
  const int n_tiles = (live + 7) / 8;
  const int g = lane / 4, t = lane % 4;
  for (int tile = warp; tile < m_tiles * n_tiles; tile += warps) {
    const int m0 = (tile % m_tiles) * 16, n0 = (tile / m_tiles) * 8;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    mma_tile<kSharedB>(a + m0 * a_row, a_row, b + n0 * b_row, b_row, n0 + g < live, K, lane,
                       acc);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int m = m0 + g + (i / 2) * 8, n = n0 + 2 * t + i % 2;
      if (n < live) store(m, n, acc[i]);
    }
  }
}

// The weight rows a tensor-core pass keeps in shared memory, in the layer's type (float32
// rounded to TF32): rows * row_length values, value(r, c) for c < columns, zero beyond
// and in rows that value_exists(r) rejects. kByColumn: consecutive threads take
// consecutive rows of a column, for rows that are W_hh's columns (its reads coalesce).
template <bool kByColumn = false, typename scalar_t, typename Exists, typename Value>
__device__ __forceinline__ void load_mma_rows(scalar_t* out, int rows, int row_length,
                                              int columns, const Exists& value_exists,
                                              const Value& value) {
  for (int e = threadIdx.x; e < rows * row_length; e += blockDim.x) {
    const int r = kByColumn ? e % rows : e / row_length;
    const int c = kByColumn ? e / rows : e - r * row_length;
    const scalar_t v = c < columns && value_exists(r) ? value(r, c) : scalar_t(0);
    scalar_t& slot = out[r * row_length + c];
    if constexpr (sizeof(scalar_t) == 4) {
      const uint32_t tf32 = to_tf32(v);
      std::memcpy(&slot, &tf32, sizeof(tf32));
    } else {
      slot = v;
    }
  }
}

// The forward product on tensor cores: gh_s[n * 3k + m] = W_m . h_n for the live rows n
// and the block's gate rows m = g k + i, as 16x8 tiles (gate rows x batch rows), a warp
// a tile at a time. w_m: the rows padded to whole tiles (zeros), `w_row` values apart.
// h_in: its rows h_row apart, from L2, or with kSharedB the block's own copy in shared
// memory (cluster form).
template <bool kSharedB = false, typename scalar_t>
__device__ __forceinline__ void mma_product(const scalar_t* w_m, int w_row, float* gh_s,
                                            const scalar_t* h_in, int h_row, int H, int k,
                                            int units, int live, int lane, int warp,
                                            int warps) {
  mma_tiles<kSharedB>(w_m, w_row, static_cast<int>(mma_gate_rows(k)) / 16, h_in, h_row, live, H,
                      lane, warp, warps,
                      [&](int m, int n, float value) {
                        if (m < 3 * k && m % k < units) gh_s[n * 3 * k + m] = value;
                      });
}

// The forward product on FFMA: gh_s[n * 3k + m] = W_m . h_n for the live rows n and the
// block's gate rows m = g k + i. Warps take groups of kRows batch rows, their state in
// registers; when there are fewer groups than warps, a group's gate rows are split among
// several warps so that none idles (at N=1 all of them share one row). A warp takes 4 /
// kRows gate rows at once: 4 independent sums a lane, reduced in one butterfly of 6
// shuffles, where one gate row at a time waited on 5 dependent shuffles each. kShared:
// h_in is this block's copy of the state in shared memory.
template <int kChunks, int kRows, bool kShared = false, typename scalar_t>
__device__ __forceinline__ void ffma_product(const float* w_s, float* gh_s, const scalar_t* h_in,
                                             int H, int k, int units, int live, int lane,
                                             int warp, int warps) {
  static_assert(kRows == 1 || kRows == 2 || kRows == 4, "4 sums a lane");
  constexpr int kGates = 4 / kRows, kSums = kGates * kRows;
  const int groups = (live + kRows - 1) / kRows;
  const int per_group = groups >= warps || groups == 0 ? 1 : warps / groups;
  const int gate_rows = 3 * units;
  for (int group = warp / per_group; group < groups; group += warps / per_group) {
    const int n0 = group * kRows;
    float h_lane[kRows][kChunks];
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
#pragma unroll
      for (int c = 0; c < kChunks; ++c) {
        const int col = lane + 32 * c;
        h_lane[j][c] =
            col < H && n0 + j < live ? load_state<kShared>(h_in + (n0 + j) * H + col) : 0.0f;
      }
    }
    // The sum this lane gets: gate row first + lane_gate of batch row n0 + lane_row.
    const int sum_of_lane = lane / (32 / kSums);
    const int lane_gate = sum_of_lane / kRows, lane_row = sum_of_lane % kRows;
    for (int first = (warp % per_group) * kGates; first < gate_rows;
         first += per_group * kGates) {
      float acc[kSums];
#pragma unroll
      for (int v = 0; v < kSums; ++v) acc[v] = 0.0f;
#pragma unroll
      for (int q = 0; q < kGates; ++q) {
        const int gate_row = first + q;
        if (gate_row >= gate_rows) break;  // uniform across the warp
        const int g = gate_row / units, iu = gate_row - g * units;
        const float* w_row = w_s + (g * k + iu) * H;
#pragma unroll
        for (int c = 0; c < kChunks; ++c) {
          const int col = lane + 32 * c;
          if (col < H) {
            const float w_value = w_row[col];
#pragma unroll
            for (int j = 0; j < kRows; ++j) {
              acc[q * kRows + j] = fmaf(h_lane[j][c], w_value, acc[q * kRows + j]);
            }
          }
        }
      }
      const float total = warp_sums<kSums>(acc, lane);
      const int gate_row = first + lane_gate;
      if (lane % (32 / kSums) == 0 && n0 + lane_row < live && gate_row < gate_rows) {
        const int g = gate_row / units, iu = gate_row - g * units;
        gh_s[(n0 + lane_row) * 3 * k + g * k + iu] = total;
      }
    }
  }
}

// The 3 gate rows of W_hh (3H, H) of units [u0, u0 + units) into w_s in float, the row of
// gate g, unit u0 + i at g k + i (rows past `units` left as they are).
template <typename scalar_t>
__device__ __forceinline__ void load_gate_rows(float* w_s, const scalar_t* w, int H, int k,
                                               int u0, int units) {
  for (int e = threadIdx.x; e < 3 * units * H; e += blockDim.x) {
    const int r = e / H, c = e - r * H, g = r / units, i = r - g * units;
    w_s[(g * k + i) * H + c] = static_cast<float>(w[(g * H + u0 + i) * H + c]);
  }
}

// The same rows for the forward on tensor cores, in the layer's type: w_row apart, zero
// rows past `units` and to whole tiles (mma_gate_rows).
template <typename scalar_t>
__device__ __forceinline__ void load_mma_gate_rows(scalar_t* w_m, int w_row, const scalar_t* w,
                                                   int H, int k, int u0, int units) {
  load_mma_rows(
      w_m, static_cast<int>(mma_gate_rows(k)), w_row, H,
      [&](int r) { return r / k < 3 && r % k < units; },
      [&](int r, int c) { return w[((r / k) * H + u0 + r % k) * H + c]; });
}

// kChunks: a lane holds kChunks values of a row's state (H <= 32 * kChunks). kRows: the
// batch rows a warp takes at once, so that each W_hh value read from shared memory serves
// kRows rows (kRows * kChunks values of state in registers). kMma: the product on tensor
// cores instead (H % 16 == 0; float32 as TF32; kChunks and kRows unused).
template <typename scalar_t, bool kSave, int kChunks, int kRows, bool kMma = false>
__global__ void __launch_bounds__(kPersistentThreads, 1)
    persistent_forward_kernel(const PersistentForwardArgs args) {
  using acc_t = at::opmath_type<scalar_t>;
  GRU_DYNAMIC_SHARED_FLOATS(smem);
  const PersistentShape& s = args.shape;
  const int H = static_cast<int>(s.H), N = static_cast<int>(s.N);
  const int k = static_cast<int>(s.units_per_block);
  const auto [d, u0, units] = block_units(s);
  // (3k, H): the row of gate g, unit u0 + i at g * k + i; in float, or for kMma in the
  // layer's type (float32 rounded to TF32), rows w_row apart, zero rows to whole tiles.
  float* w_s = smem;
  scalar_t* w_m = reinterpret_cast<scalar_t*>(smem);
  constexpr int64_t kBytes = sizeof(scalar_t);
  const int w_row = static_cast<int>(mma_row(H, kBytes));
  // (N, 3k): h W_hh^T of those rows, same order
  float* gh_s = smem + (kMma ? mma_weight_floats(k, H, kBytes) : 3 * k * H);

  const scalar_t* w = static_cast<const scalar_t*>(args.w_hh[d]);
  if constexpr (kMma) {  // row g k + i: gate g of unit u0 + i
    load_mma_gate_rows(w_m, w_row, w, H, k, u0, units);
  } else {
    load_gate_rows(w_s, w, H, k, u0, units);
  }
  __syncthreads();

  const cg::grid_group grid = cg::this_grid();
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const auto [gx_stride, out_stride, saved_stride] = row_strides(s);
  const scalar_t* b_ih = static_cast<const scalar_t*>(args.b_ih[d]);
  const scalar_t* b_hh = static_cast<const scalar_t*>(args.b_hh[d]);
  for (int64_t i = 0; i < s.T; ++i) {
    const StepRows rows = step_rows(s, i, d);
    scalar_t* h_buf = static_cast<scalar_t*>(args.h_buf);
    const scalar_t* h_in = h_buf + ((i % 2) * s.D + d) * N * H;
    scalar_t* h_out = h_buf + (((i + 1) % 2) * s.D + d) * N * H;

    // gh for this block's gate rows.
    const int live = static_cast<int>(rows.live);
    if constexpr (kMma) {
      mma_product(w_m, w_row, gh_s, h_in, H, H, k, units, live, lane, warp, warps);
    } else {
      ffma_product<kChunks, kRows>(w_s, gh_s, h_in, H, k, units, live, lane, warp, warps);
    }
    __syncthreads();

    for (int e = threadIdx.x; e < live * units; e += blockDim.x) {
      const int n = e / units, iu = e - n * units;
      const int64_t row = rows.first + n;
      gru_forward_element<acc_t, kSave>(
          static_cast<const scalar_t*>(args.gx) + row * gx_stride + d * 3 * H,
          gh_s + n * 3 * k + iu, k, b_ih, b_hh, h_in + n * H, h_out + n * H,
          static_cast<scalar_t*>(args.out) + row * out_stride + d * H,
          kSave ? static_cast<scalar_t*>(args.saved) + row * saved_stride + d * kSavedBlocks * H
                : nullptr,
          u0 + iu, H);
    }
    // Rows that have ended (packed input) keep their state in the other buffer too.
    for (int e = threadIdx.x; e < (N - live) * units; e += blockDim.x) {
      const int n = live + e / units, j = u0 + e % units;
      h_out[n * H + j] = h_in[n * H + j];
    }
    if (i + 1 < s.T) {  // the next step's gx, for the same thread's elements
      const StepRows next = step_rows(s, i + 1, d);
      for (int e = threadIdx.x; e < static_cast<int>(next.live) * units; e += blockDim.x) {
        const int n = e / units;
        const scalar_t* gx_row = static_cast<const scalar_t*>(args.gx) +
                                 (next.first + n) * gx_stride + d * 3 * H + u0 + (e - n * units);
#pragma unroll
        for (int g = 0; g < 3; ++g) prefetch_l1(gx_row + g * H);
      }
    }
    grid.sync();  // every block's h_out is complete before anyone reads it
  }
}

// The backward product on tensor cores: dh[n, u0 + i] += dgh_n . W_hh[:, u0 + i] for the
// live rows n and the block's units i, as 16x8 tiles (units x batch rows) over the 3H gate
// rows. w_m: the units' columns of W_hh as rows, w_row apart (a tile of 16 rows).
template <typename scalar_t>
__device__ __forceinline__ void mma_backward_product(const scalar_t* w_m, int w_row,
                                                     const scalar_t* dgh, scalar_t* dh, int H,
                                                     int u0, int units, int live, int lane,
                                                     int warp, int warps) {
  const int G = 3 * H;
  mma_tiles<false>(w_m, w_row, 1, dgh, G, live, G, lane, warp, warps,
                   [&](int iu, int n, float value) {
                     if (iu >= units) return;
                     scalar_t& slot = dh[n * H + u0 + iu];
                     slot = static_cast<float>(slot) + value;
                   });
}

// The backward product on FFMA (same sums): a warp per batch row, a lane's share of the
// gate rows with kLoads loads from L2 in flight at once, one accumulator per unit (w_s
// holds only the units' rows: the guard keeps reads inside it), the units' sums in one
// shuffle butterfly.
template <int kUnits, typename scalar_t>
__device__ __forceinline__ void ffma_backward_product(const float* w_s, const scalar_t* dgh,
                                                      scalar_t* dh, int H, int u0, int units,
                                                      int live, int lane, int warp,
                                                      int warps) {
  const int G = 3 * H;
  constexpr int kLoads = 4;
  for (int n = warp; n < live; n += warps) {
    const scalar_t* dgh_row = dgh + n * G;
    float acc[kUnits];
#pragma unroll
    for (int iu = 0; iu < kUnits; ++iu) acc[iu] = 0.0f;
    for (int r0 = lane; r0 < G; r0 += 32 * kLoads) {
      float g[kLoads];
#pragma unroll
      for (int b = 0; b < kLoads; ++b) {
        g[b] = r0 + 32 * b < G ? load_cg(dgh_row + r0 + 32 * b) : 0.0f;
      }
#pragma unroll
      for (int b = 0; b < kLoads; ++b) {
        const int r = r0 + 32 * b;
        if (r >= G) break;
#pragma unroll
        for (int iu = 0; iu < kUnits; ++iu) {
          if (iu < units) acc[iu] = fmaf(g[b], w_s[iu * G + r], acc[iu]);
        }
      }
    }
    const float total = warp_sums<kUnits>(acc, lane);
    const int iu = lane / (32 / kUnits);  // the unit whose sum this lane gets
    if (lane % (32 / kUnits) == 0 && iu < units) {
      scalar_t& slot = dh[n * H + u0 + iu];
      slot = static_cast<float>(slot) + total;
    }
  }
}

// kUnits: the accumulators a lane keeps, one per unit of the block (units_per_block <=
// kUnits), so that a block of 2 units does not pay for 16. kMma: the product on tensor
// cores instead (as the forward's; kUnits unused).
template <typename scalar_t, int kUnits, bool kMma = false>
__global__ void __launch_bounds__(kPersistentThreads, 1)
    persistent_backward_kernel(const PersistentBackwardArgs args) {
  using acc_t = at::opmath_type<scalar_t>;
  GRU_DYNAMIC_SHARED_FLOATS(smem);
  const PersistentShape& s = args.shape;
  const int H = static_cast<int>(s.H), N = static_cast<int>(s.N);
  const auto [d, u0, units] = block_units(s);
  // (k, 3H): column u0 + i of W_hh as row i; in float, or for kMma in the layer's type
  // (float32 rounded to TF32), 16 rows (a tile, zeros past the units) w_row apart.
  float* w_s = smem;
  scalar_t* w_m = reinterpret_cast<scalar_t*>(smem);
  const int w_row = static_cast<int>(mma_row(3 * H, sizeof(scalar_t)));

  const scalar_t* w = static_cast<const scalar_t*>(args.w_hh[d]);
  if constexpr (kMma) {
    load_mma_rows<true>(
        w_m, 16, w_row, 3 * H, [&](int i) { return i < units; },
        [&](int i, int r) { return w[r * H + u0 + i]; });
  } else {
    for (int e = threadIdx.x; e < units * 3 * H; e += blockDim.x) {
      const int i = e / (3 * H), r = e - i * 3 * H;
      w_s[i * 3 * H + r] = static_cast<float>(w[r * H + u0 + i]);
    }
  }
  __syncthreads();

  const cg::grid_group grid = cg::this_grid();
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const auto [gx_stride, out_stride, saved_stride] = row_strides(s);
  scalar_t* dh = static_cast<scalar_t*>(args.dh) + d * N * H;
  for (int64_t i = s.T - 1; i >= 0; --i) {
    const StepRows rows = step_rows(s, i, d);
    scalar_t* dgh = static_cast<scalar_t*>(args.dgh_buf) + ((i % 2) * s.D + d) * N * 3 * H;

    // The element step of this block's units: dgx, dgh_n, gh's gradient for the
    // exchange, and the part of dh that skips W_hh.
    const int live = static_cast<int>(rows.live);
    for (int e = threadIdx.x; e < live * units; e += blockDim.x) {
      const int n = e / units, iu = e - n * units;
      const int64_t row = rows.first + n;
      gru_backward_element<acc_t>(
          static_cast<const scalar_t*>(args.grad_out) + row * out_stride + d * H, dh + n * H,
          static_cast<const scalar_t*>(args.saved) + row * saved_stride + d * kSavedBlocks * H,
          static_cast<scalar_t*>(args.dgx) + row * gx_stride + d * 3 * H,
          dgh + n * 3 * H + u0 + iu, H,
          static_cast<scalar_t*>(args.dgh_n) + row * out_stride + d * H, u0 + iu, H);
    }
    if (i > 0) {  // the next step's inputs, for the same thread's elements
      const StepRows next = step_rows(s, i - 1, d);
      for (int e = threadIdx.x; e < static_cast<int>(next.live) * units; e += blockDim.x) {
        const int n = e / units;
        const int64_t row = next.first + n;
        prefetch_backward_inputs(
            static_cast<const scalar_t*>(args.grad_out) + row * out_stride + d * H,
            static_cast<const scalar_t*>(args.saved) + row * saved_stride + d * kSavedBlocks * H,
            u0 + e - n * units, H);
      }
    }
    grid.sync();  // gh's gradient of every unit is written

    // dh[n, u] += sum over the 3H gate rows r of dgh[n, r] * W_hh[r, u], for own units.
    if constexpr (kMma) {
      mma_backward_product(w_m, w_row, dgh, dh, H, u0, units, live, lane, warp, warps);
    } else {
      ffma_backward_product<kUnits>(w_s, dgh, dh, H, u0, units, live, lane, warp, warps);
    }
    __syncthreads();  // the next step's element pass reads dh written by other warps
  }
}

// fn(kernel, kChunks, kRows) with the forward kernel built for H's chunk form and the
// rows a warp takes, as the plan says them (forward_chunks, forward_warp_rows); or, with
// mma, the tensor-core one as fn(kernel, 0, 0).
template <typename scalar_t, bool kSave, typename Fn>
auto with_forward_kernel(int64_t H, int64_t rows_per_warp, bool mma, const Fn& fn) {
  if (mma) return fn(persistent_forward_kernel<scalar_t, kSave, 8, 1, true>, 0, 0);
  const int64_t rows = forward_warp_rows(H, rows_per_warp);
  switch (forward_chunks(H)) {
    case 8:
      if (rows == 4) return fn(persistent_forward_kernel<scalar_t, kSave, 8, 4>, 8, 4);
      if (rows == 2) return fn(persistent_forward_kernel<scalar_t, kSave, 8, 2>, 8, 2);
      return fn(persistent_forward_kernel<scalar_t, kSave, 8, 1>, 8, 1);
    case 16:
      if (rows == 2) return fn(persistent_forward_kernel<scalar_t, kSave, 16, 2>, 16, 2);
      return fn(persistent_forward_kernel<scalar_t, kSave, 16, 1>, 16, 1);
    default:
      return fn(persistent_forward_kernel<scalar_t, kSave, 32, 1>, 32, 1);
  }
}

// fn(kernel, kUnits) with the backward kernel built for units_per_block (<= 16, the
// plan's kPersistentMaxUnits); or, with mma, the tensor-core one as fn(kernel, 0).
template <typename scalar_t, typename Fn>
auto with_backward_kernel(int64_t units_per_block, bool mma, const Fn& fn) {
  static_assert(kPersistentMaxUnits == 16, "the largest instantiation below; a tile's rows");
  if (mma) return fn(persistent_backward_kernel<scalar_t, 16, true>, 0);
  if (units_per_block <= 2) return fn(persistent_backward_kernel<scalar_t, 2>, 2);
  if (units_per_block <= 4) return fn(persistent_backward_kernel<scalar_t, 4>, 4);
  if (units_per_block <= 8) return fn(persistent_backward_kernel<scalar_t, 8>, 8);
  return fn(persistent_backward_kernel<scalar_t, 16>, 16);
}

}  // namespace persistent_kernels
}  // namespace gru_cuda
