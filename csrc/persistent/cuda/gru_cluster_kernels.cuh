// The persistent kernels' cluster form (sm_90 on): a thread-block cluster runs the whole
// sequence for R batch rows of one direction, its C blocks owning k hidden units each and
// holding their 3k gate rows of W_hh in shared memory, as the grid form's forward blocks
// do. In the forward each block writes its units of the new state into every block's
// copy of the state in shared memory; in the backward it turns its units' gradient of gh
// into a partial dh for every unit and writes each into the unit's owner, which sums the
// C partials. Either way the cluster then waits at one hardware barrier: a step reads
// nothing from L2 but its own inputs, and never waits on the whole grid. Clusters never
// meet: an ordinary launch with a cluster dimension. Both passes' products run on FFMA,
// or (kMma) on tensor cores. Shared memory as cluster_slots (persistent_plan.h) lays it
// out. Included by gru_persistent_launch.cuh and by the tests' CPU emulation.
#pragma once

#include "gru_local_kernels.cuh"
#include "gru_persistent_kernels.cuh"

namespace gru_cuda {
namespace persistent_kernels {

// Clusters exist from sm_90 on; the kernels are built for older devices too (one
// library), where their bodies only trap: the plan never gives those devices clusters.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 900
#define GRU_CLUSTERS 0
#else
#define GRU_CLUSTERS 1
#endif

#if GRU_CLUSTERS
// The cluster's barrier: arrive with release, wait with acquire, at cluster scope, so
// what a block wrote into its peers' shared memory before it is seen by all after it.
__device__ __forceinline__ void cluster_barrier() { cg::this_cluster().sync(); }

// p, an address in this block's shared memory, in block `rank` of the cluster.
template <typename T>
__device__ __forceinline__ T* cluster_peer(T* p, int rank) {
  return cg::this_cluster().map_shared_rank(p, rank);
}
#endif

// This block's place: the layer's sizes the kernels use (H, N; k units a block, R rows and
// C blocks a cluster), its cluster's direction and batch rows, as LocalRows says them,
// and its rank in the cluster, owning units [u0, u0 + units) (none past H).
struct ClusterBlock {
  int H, N, k, R, C;
  LocalRows rows;
  int rank, u0, units;
};

__device__ __forceinline__ ClusterBlock cluster_block(const PersistentShape& s) {
  const int C = static_cast<int>(s.cluster_size), R = static_cast<int>(s.rows_per_block);
  const int k = static_cast<int>(s.units_per_block), H = static_cast<int>(s.H);
  const int N = static_cast<int>(s.N);
  const int cluster = blockIdx.x / C, rank = blockIdx.x % C;
  const int per_direction = static_cast<int>(s.blocks_per_direction) / C;
  const int n0 = (cluster % per_direction) * R, left = N - n0;
  const int u0 = rank * k, owned = H - u0 < k ? H - u0 : k;
  return {H, N, k, R, C, {cluster / per_direction, n0, left < R ? left : R}, rank, u0,
          owned > 0 ? owned : 0};
}

// value at `index` of `buffer` (this block's shared memory) in every other block's copy.
template <typename T>
__device__ __forceinline__ void write_to_peers(T* buffer, int index, T value, int rank, int C) {
#if GRU_CLUSTERS
  for (int r = 1; r < C; ++r) cluster_peer(buffer, (rank + r) % C)[index] = value;
#endif
}

// kChunks, kRows, kMma: the grid form's forward product's (gru_persistent_kernels.cuh);
// with kMma the state's tiles come from the block's own copy in shared memory.
template <typename scalar_t, bool kSave, int kChunks, int kRows, bool kMma = false>
__global__ void __launch_bounds__(kPersistentThreads, 1)
    cluster_forward_kernel(const PersistentForwardArgs args) {
#if !GRU_CLUSTERS
  __trap();
#else
  using acc_t = at::opmath_type<scalar_t>;
  GRU_DYNAMIC_SHARED_FLOATS(smem);
  const PersistentShape& s = args.shape;
  const auto [H, N, k, R, C, block, rank, u0, units] = cluster_block(s);
  const int d = block.d;
  constexpr int64_t kBytes = sizeof(scalar_t);
  const ClusterSlots slots = cluster_slots(H, k, R, C, kBytes, kMma);
  // (3k, H): gate g of unit u0 + i at row g k + i; in float, or for kMma as the grid
  // form's tensor-core forward has them (rows w_row apart, zero rows to whole tiles).
  float* w_s = smem;
  scalar_t* w_m = reinterpret_cast<scalar_t*>(smem);
  const int w_row = static_cast<int>(mma_row(H, kBytes));
  float* gh_s = smem + slots.gh;    // (R, 3k): h W_hh^T of those rows
  // (2, R, h_row): for kMma a row padded as W_hh's are, so that a B fragment's 8 rows
  // fall on different banks.
  const int h_row = static_cast<int>(cluster_state_row(H, kBytes, kMma));
  scalar_t* h_s = reinterpret_cast<scalar_t*>(smem + slots.h);

  const scalar_t* w = static_cast<const scalar_t*>(args.w_hh[d]);
  if constexpr (kMma) {
    load_mma_gate_rows(w_m, w_row, w, H, k, u0, units);
  } else {
    load_gate_rows(w_s, w, H, k, u0, units);
  }
  // Every block starts from the whole of its rows' first state.
  const scalar_t* h0 = static_cast<const scalar_t*>(args.h_buf) + (d * N + block.n0) * H;
  for (int e = threadIdx.x; e < block.rows * H; e += blockDim.x) {
    h_s[(e / H) * h_row + e % H] = h0[e];
  }
  cluster_barrier();  // all blocks have started before any writes into their memory

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const auto [gx_stride, out_stride, saved_stride] = row_strides(s);
  const scalar_t* b_ih = static_cast<const scalar_t*>(args.b_ih[d]);
  const scalar_t* b_hh = static_cast<const scalar_t*>(args.b_hh[d]);
  for (int64_t i = 0; i < s.T; ++i) {
    const StepRows step = step_rows(s, i, d);
    const int live = live_rows(step, block);
    scalar_t* h_in = h_s + (i % 2) * R * h_row;
    scalar_t* h_out = h_s + ((i + 1) % 2) * R * h_row;
    if constexpr (kMma) {
      mma_product<true>(w_m, w_row, gh_s, h_in, h_row, H, k, units, live, lane, warp, warps);
    } else {
      ffma_product<kChunks, kRows, true>(w_s, gh_s, h_in, H, k, units, live, lane, warp, warps);
    }
    __syncthreads();

    for (int e = threadIdx.x; e < live * units; e += blockDim.x) {
      const int n = e / units, j = u0 + e - n * units;
      const int64_t row = step.first + block.n0 + n;
      gru_forward_element<acc_t, kSave>(
          static_cast<const scalar_t*>(args.gx) + row * gx_stride + d * 3 * H,
          gh_s + n * 3 * k + (j - u0), k, b_ih, b_hh, h_in + n * h_row, h_out + n * h_row,
          static_cast<scalar_t*>(args.out) + row * out_stride + d * H,
          kSave ? static_cast<scalar_t*>(args.saved) + row * saved_stride + d * kSavedBlocks * H
                : nullptr,
          j, H);
      write_to_peers(h_out, n * h_row + j, h_out[n * h_row + j], rank, C);
    }
    // Rows that have ended (packed input) keep their state: every block its own copy.
    for (int e = threadIdx.x; e < (block.rows - live) * H; e += blockDim.x) {
      const int n = live + e / H, j = e % H;
      h_out[n * h_row + j] = h_in[n * h_row + j];
    }
    if (i + 1 < s.T) {  // the next step's gx, for the same thread's elements
      const StepRows next = step_rows(s, i + 1, d);
      for (int e = threadIdx.x; e < live_rows(next, block) * units; e += blockDim.x) {
        const int n = e / units;
        const scalar_t* gx_row = static_cast<const scalar_t*>(args.gx) +
                                 (next.first + block.n0 + n) * gx_stride + d * 3 * H + u0 +
                                 (e - n * units);
#pragma unroll
        for (int g = 0; g < 3; ++g) prefetch_l1(gx_row + g * H);
      }
    }
    cluster_barrier();  // every block's copy holds the whole new state
  }
  // The last state, this block's units, where the runner reads h_n.
  const scalar_t* h_last = h_s + (s.T % 2) * R * h_row;
  scalar_t* h_n = static_cast<scalar_t*>(args.h_buf) + (((s.T % 2) * s.D + d) * N + block.n0) * H;
  for (int e = threadIdx.x; e < block.rows * units; e += blockDim.x) {
    const int n = e / units, j = u0 + e - n * units;
    h_n[n * H + j] = h_last[n * h_row + j];
  }
#endif
}

// A partial dh of unit u for row n from this block (source `rank`), written into the
// (C, R, k) buffer of the block owning u: its own, or a peer's.
__device__ __forceinline__ void send_partial(float* partial, int R, int k, int rank, int u,
                                             int n, float value) {
#if GRU_CLUSTERS
  const int owner = u / k;
  float* slot = partial + (rank * R + n) * k + (u - owner * k);
  *(owner == rank ? slot : cluster_peer(slot, owner)) = value;
#endif
}

// The partial dh of units u + 32 p (p < kUnits) from this block's gate rows for kRows
// rows: sums[j][p] = sum over the own gate rows m of dgh[j * row + m] * w_s[m * H + u +
// 32 p]. Each W_hh value read serves the kRows rows and each dgh value the kUnits units;
// at least 4 independent chains keep FMAs in flight. A unit past H reads column H - 1
// and its sums are the caller's to drop.
template <int kRows, int kUnits, typename scalar_t>
__device__ __forceinline__ void unit_partials(const float* w_s, const scalar_t* dgh, int row,
                                              int H, int k, int units, int u,
                                              float (&sums)[kRows][kUnits]) {
  constexpr int kChains = kRows * kUnits >= 4 ? 1 : 4 / (kRows * kUnits);
  int column[kUnits];
#pragma unroll
  for (int p = 0; p < kUnits; ++p) column[p] = u + 32 * p < H ? u + 32 * p : H - 1;
  float acc[kRows][kUnits][kChains];
#pragma unroll
  for (int j = 0; j < kRows; ++j) {
#pragma unroll
    for (int p = 0; p < kUnits; ++p) {
#pragma unroll
      for (int q = 0; q < kChains; ++q) acc[j][p][q] = 0.0f;
    }
  }
  const auto step = [&](int m, int q) {
    float w[kUnits];
#pragma unroll
    for (int p = 0; p < kUnits; ++p) w[p] = w_s[m * H + column[p]];
#pragma unroll
    for (int j = 0; j < kRows; ++j) {
      const float g = static_cast<float>(dgh[j * row + m]);
#pragma unroll
      for (int p = 0; p < kUnits; ++p) acc[j][p][q] = fmaf(g, w[p], acc[j][p][q]);
    }
  };
  for (int g = 0; g < 3; ++g) {
    int m = g * k;
    const int end = m + units;
    for (; m + kChains <= end; m += kChains) {
#pragma unroll
      for (int q = 0; q < kChains; ++q) step(m + q, q);
    }
    for (; m < end; ++m) step(m, 0);
  }
#pragma unroll
  for (int j = 0; j < kRows; ++j) {
#pragma unroll
    for (int p = 0; p < kUnits; ++p) {
      float total = acc[j][p][0];
#pragma unroll
      for (int q = 1; q < kChains; ++q) total += acc[j][p][q];
      sums[j][p] = total;
    }
  }
}

// The backward's product, split by gate rows: a block multiplies the gradient of its own
// gate rows (dgh_s, (R, 3k)) by its slice of W_hh into a partial dh for every unit, and
// writes each unit's partial into the block owning it, as source `rank` of its (C, R, k)
// buffer. A warp takes items of 32 kUnits units (a lane kUnits units, 32 apart) and 4
// rows, or 1 for the rows past a multiple of 4: no shuffles. Every block writes every
// live row's partials, zeros where it owns no units.
template <int kUnits, typename scalar_t>
__device__ __forceinline__ void cluster_backward_partials(const float* w_s,
                                                          const scalar_t* dgh_s,
                                                          float* partial, int H, int k,
                                                          int units, int R, int rank,
                                                          int live, int lane, int warp,
                                                          int warps) {
#if GRU_CLUSTERS
  constexpr int kSlab = 32 * kUnits;
  const int slabs = (H + kSlab - 1) / kSlab, quads = live / 4, groups = quads + live % 4;
  for (int item = warp; item < groups * slabs; item += warps) {
    const int group = item / slabs, u = (item - group * slabs) * kSlab + lane;
    if (u >= H) continue;
    const auto store = [&](int n, int p, float value) {
      if (u + 32 * p < H) send_partial(partial, R, k, rank, u + 32 * p, n, value);
    };
    if (group < quads) {
      float sums[4][kUnits];
      unit_partials<4, kUnits>(w_s, dgh_s + 4 * group * 3 * k, 3 * k, H, k, units, u, sums);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
#pragma unroll
        for (int p = 0; p < kUnits; ++p) store(4 * group + j, p, sums[j][p]);
      }
    } else {
      const int n = 4 * quads + group - quads;
      float sums[1][kUnits];
      unit_partials<1, kUnits>(w_s, dgh_s + n * 3 * k, 3 * k, H, k, units, u, sums);
#pragma unroll
      for (int p = 0; p < kUnits; ++p) store(n, p, sums[0][p]);
    }
  }
#endif
}

// The same partials on tensor cores: (H units x R rows) = W_hh's slice transposed (w_m: H
// rows of the block's gate rows, zeros past its units and past 3k, w_row apart) times
// the gradient of gh (dgh_s: R rows dgh_row apart, zeros past the units), over K (3k
// padded to whole k steps), as 16x8 tiles (units x batch rows), a warp a tile at a time.
template <typename scalar_t>
__device__ __forceinline__ void cluster_backward_mma_partials(
    const scalar_t* w_m, int w_row, const scalar_t* dgh_s, int dgh_row, int K, float* partial,
    int H, int k, int R, int rank, int live, int lane, int warp, int warps) {
#if GRU_CLUSTERS
  mma_tiles<true>(
      w_m, w_row, H / 16, dgh_s, dgh_row, live, K, lane, warp, warps,
      [&](int u, int n, float value) { send_partial(partial, R, k, rank, u, n, value); });
#endif
}

// kMma: the product on tensor cores (H % 16 == 0; float32 as TF32); else on FFMA with
// kLaneUnits units a lane (cluster_backward_lane_units).
template <typename scalar_t, bool kMma = false, int kLaneUnits = 1>
__global__ void __launch_bounds__(kPersistentThreads, 1)
    cluster_backward_kernel(const PersistentBackwardArgs args) {
#if !GRU_CLUSTERS
  __trap();
#else
  using acc_t = at::opmath_type<scalar_t>;
  GRU_DYNAMIC_SHARED_FLOATS(smem);
  const PersistentShape& s = args.shape;
  const auto [H, N, k, R, C, block, rank, u0, units] = cluster_block(s);
  const int d = block.d;
  constexpr int64_t kBytes = sizeof(scalar_t);
  const ClusterSlots slots = cluster_slots(H, k, R, C, kBytes, kMma);
  // (3k, H): as the forward's; or for kMma (H, w_row): unit u's row holds W_hh[m, u] for
  // the block's gate rows m = g k + i, in the layer's type (float32 rounded to TF32).
  float* w_s = smem;
  scalar_t* w_m = reinterpret_cast<scalar_t*>(smem);
  const int K = static_cast<int>(mma_gate_rows(k));  // kMma: 3k padded to whole k steps
  // kMma: dgh's rows padded as W_hh's, so that a B fragment's 8 rows fall on different banks
  const int dgh_row = static_cast<int>(kMma ? mma_row(K, kBytes) : 3 * k);
  const int w_row = static_cast<int>(mma_row(K, kBytes));
  scalar_t* dgh_s = reinterpret_cast<scalar_t*>(smem + slots.dgh);  // (R, dgh_row), same order
  float* partial_s = smem + slots.partial;  // (2, C, R, k)

  const scalar_t* w = static_cast<const scalar_t*>(args.w_hh[d]);
  if constexpr (kMma) {
    load_mma_rows<true>(w_m, H, w_row, 3 * k, [](int) { return true; }, [&](int u, int m) {
      const int g = m / k, i = m - g * k;
      return i < units ? w[(g * H + u0 + i) * H + u] : scalar_t(0);
    });
    // The product reads every value of a live row: those the element pass never writes
    // (past the units, past 3k) must be zeros, not whatever shared memory held.
    for (int e = threadIdx.x; e < R * dgh_row; e += blockDim.x) dgh_s[e] = scalar_t(0);
  } else {
    load_gate_rows(w_s, w, H, k, u0, units);
  }
  cluster_barrier();  // all blocks have started before any writes into their memory

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  const auto [gx_stride, out_stride, saved_stride] = row_strides(s);
  scalar_t* dh = static_cast<scalar_t*>(args.dh) + (d * N + block.n0) * H;
  for (int64_t i = s.T - 1; i >= 0; --i) {
    const StepRows step = step_rows(s, i, d);
    const int live = live_rows(step, block);
    float* partial = partial_s + (i % 2) * C * R * k;

    for (int e = threadIdx.x; e < live * units; e += blockDim.x) {
      const int n = e / units, iu = e - n * units;
      const int64_t row = step.first + block.n0 + n;
      gru_backward_element<acc_t>(
          static_cast<const scalar_t*>(args.grad_out) + row * out_stride + d * H, dh + n * H,
          static_cast<const scalar_t*>(args.saved) + row * saved_stride + d * kSavedBlocks * H,
          static_cast<scalar_t*>(args.dgx) + row * gx_stride + d * 3 * H,
          dgh_s + n * dgh_row + iu, k,
          static_cast<scalar_t*>(args.dgh_n) + row * out_stride + d * H, u0 + iu, H);
    }
    if (i > 0) {  // the next step's inputs, for the same thread's elements
      const StepRows next = step_rows(s, i - 1, d);
      for (int e = threadIdx.x; e < live_rows(next, block) * units; e += blockDim.x) {
        const int n = e / units;
        const int64_t row = next.first + block.n0 + n;
        prefetch_backward_inputs(
            static_cast<const scalar_t*>(args.grad_out) + row * out_stride + d * H,
            static_cast<const scalar_t*>(args.saved) + row * saved_stride + d * kSavedBlocks * H,
            u0 + e - n * units, H);
      }
    }
    __syncthreads();  // the product reads every element's gradient of gh
    if constexpr (kMma) {
      cluster_backward_mma_partials(w_m, w_row, dgh_s, dgh_row, K, partial, H, k, R, rank,
                                    live, lane, warp, warps);
    } else {
      cluster_backward_partials<kLaneUnits>(w_s, dgh_s, partial, H, k, units, R, rank, live,
                                            lane, warp, warps);
    }
    cluster_barrier();  // every block's partials for this block's units are in

    // dh[n, u] += sum over the cluster's gate rows r of dgh[n, r] * W_hh[r, u], own units.
    for (int e = threadIdx.x; e < live * units; e += blockDim.x) {
      const int n = e / units, iu = e - n * units;
      float sum = 0.0f;
      for (int c = 0; c < C; ++c) sum += partial[(c * R + n) * k + iu];
      scalar_t& slot = dh[n * H + u0 + iu];
      slot = static_cast<float>(slot) + sum;
    }
    __syncthreads();  // the next step's element pass reads dh written by other threads
  }
#endif
}

// fn(kernel, kChunks, kRows) with the cluster forward built for H's chunk form (H <= 512:
// 8 or 16 chunks, as the plan allows) and the rows a warp takes; or, with mma, the
// tensor-core one as fn(kernel, 0, 0).
template <typename scalar_t, bool kSave, typename Fn>
auto with_cluster_forward_kernel(int64_t H, int64_t rows_per_warp, bool mma, const Fn& fn) {
  if (mma) return fn(cluster_forward_kernel<scalar_t, kSave, 8, 1, true>, 0, 0);
  const int64_t rows = forward_warp_rows(H, rows_per_warp);
  if (forward_chunks(H) == 8) {
    if (rows == 4) return fn(cluster_forward_kernel<scalar_t, kSave, 8, 4>, 8, 4);
    if (rows == 2) return fn(cluster_forward_kernel<scalar_t, kSave, 8, 2>, 8, 2);
    return fn(cluster_forward_kernel<scalar_t, kSave, 8, 1>, 8, 1);
  }
  if (rows == 2) return fn(cluster_forward_kernel<scalar_t, kSave, 16, 2>, 16, 2);
  return fn(cluster_forward_kernel<scalar_t, kSave, 16, 1>, 16, 1);
}

// fn(kernel, lane_units): the backward on FFMA with the units a lane its H and R rows a
// cluster call for, or with mma on tensor cores as fn(kernel, 0).
template <typename scalar_t, typename Fn>
auto with_cluster_backward_kernel(int64_t H, int64_t R, bool mma, const Fn& fn) {
  if (mma) return fn(cluster_backward_kernel<scalar_t, true>, 0);
  if (cluster_backward_lane_units(H, R) == 2) {
    return fn(cluster_backward_kernel<scalar_t, false, 2>, 2);
  }
  return fn(cluster_backward_kernel<scalar_t, false, 1>, 1);
}

}  // namespace persistent_kernels
}  // namespace gru_cuda
