// The persistent kernels' local form, for small H: a block holds all of one direction's
// W_hh in shared memory and runs the whole sequence for kRows batch rows. Batch rows
// never meet, so blocks need no grid barrier: an ordinary launch, no co-residency, only
// __syncthreads between a step's product and its element pass. A thread per gate row
// (3H threads a block; fewer threads loop). Shared memory as local_forward_slots and
// local_backward_slots (persistent_plan.h) lay it out. Included by
// gru_persistent_launch.cuh and by the tests' CPU emulation.
#pragma once

#include <type_traits>

#include "gru_persistent_kernels.cuh"

namespace gru_cuda {
namespace persistent_kernels {

// Independent accumulators a thread's product keeps per row: FMA latency hidden in-thread.
// Also the state values read at once: one 4-wide shared load where H % 4 == 0.
constexpr int kLocalChains = 4;

struct LocalRows {
  int d, n0, rows;  // this block's direction, first batch row, and rows (kRows but last)
};

template <int kRows>
__device__ __forceinline__ LocalRows local_rows(const PersistentShape& s) {
  const int per_direction = static_cast<int>(s.blocks_per_direction);
  const int d = blockIdx.x / per_direction, n0 = (blockIdx.x % per_direction) * kRows;
  const int left = static_cast<int>(s.N) - n0;
  return {d, n0, left < kRows ? left : kRows};
}

// Of this block's rows, those live at a step (a prefix, as the step's rows are).
__device__ __forceinline__ int live_rows(const StepRows& step, const LocalRows& block) {
  const int64_t live = step.live - block.n0;
  return live <= 0 ? 0 : (live < block.rows ? static_cast<int>(live) : block.rows);
}

// p[0..3] as floats; with kVector in one load (p aligned to 4 values).
template <bool kVector, typename T>
__device__ __forceinline__ void load_four(const T* p, float (&v)[4]) {
  static_assert(sizeof(T) == 2 || sizeof(T) == 4, "float, half or bfloat16");
  if constexpr (kVector && sizeof(T) == 4) {
    const float4 q = load_as<float4>(p);
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  } else if constexpr (kVector) {
    const uint2 q = load_as<uint2>(p);
    T t[4];
    std::memcpy(t, &q, sizeof(q));
#pragma unroll
    for (int i = 0; i < 4; ++i) v[i] = static_cast<float>(t[i]);
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) v[i] = static_cast<float>(p[i]);
  }
}

// sum over c < H of a[c * a_stride] * b_r[c], for kRows vectors b_r = b + r * b_row, each
// over kLocalChains accumulators. a: float in shared memory; b: the state's type, aligned
// to 4 values (b and b_row) when kVector.
template <int kRows, bool kVector, typename T>
__device__ __forceinline__ void local_dots_with(const float* a, int a_stride, const T* b, int b_row,
                                           int H, float (&sums)[kRows]) {
  static_assert(kLocalChains == 4, "load_four feeds one value to each chain");
  float acc[kLocalChains][kRows];
#pragma unroll
  for (int q = 0; q < kLocalChains; ++q) {
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[q][r] = 0.0f;
  }
  int c = 0;
  for (; c + kLocalChains <= H; c += kLocalChains) {
    float v[kRows][kLocalChains];
#pragma unroll
    for (int r = 0; r < kRows; ++r) load_four<kVector>(b + r * b_row + c, v[r]);
#pragma unroll
    for (int q = 0; q < kLocalChains; ++q) {
      const float w = a[(c + q) * a_stride];
#pragma unroll
      for (int r = 0; r < kRows; ++r) acc[q][r] = fmaf(w, v[r][q], acc[q][r]);
    }
  }
  for (; c < H; ++c) {
    const float w = a[c * a_stride];
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[0][r] = fmaf(w, static_cast<float>(b[r * b_row + c]), acc[0][r]);
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    float total = acc[0][r];
#pragma unroll
    for (int q = 1; q < kLocalChains; ++q) total += acc[q][r];
    sums[r] = total;
  }
}

// local_dots with 4-wide loads where H % 4 == 0 makes b and its rows aligned (the slots
// start at multiples of 3H, H and H * w_stride or 3H * H floats).
template <int kRows, typename T>
__device__ __forceinline__ void local_dots(const float* a, int a_stride, const T* b, int b_row,
                                           int H, float (&sums)[kRows]) {
  if (H % 4 == 0) {
    local_dots_with<kRows, true>(a, a_stride, b, b_row, H, sums);
  } else {
    local_dots_with<kRows, false>(a, a_stride, b, b_row, H, sums);
  }
}

// The same sums with a in registers: w, kWChunks chunks of 4 values (zeros past H).
// Only b is read from shared memory, so a step's product costs b's broadcast loads and
// the FMAs, not one shared load of W_hh per FMA. Two accumulator chains a row
// keep FMA latency under issue with 3 warps a scheduler, and leave registers for w.
template <int kRows, int kWChunks, bool kVector, typename T>
__device__ __forceinline__ void register_dots_with(const float (&w)[4 * kWChunks], const T* b,
                                                   int b_row, int H, float (&sums)[kRows]) {
  float acc[2][kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) acc[0][r] = acc[1][r] = 0.0f;
#pragma unroll
  for (int k = 0; k < kWChunks; ++k) {
    const int c = 4 * k;
    if (c >= H) break;  // uniform
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      float v[4];
      if (kVector) {
        load_four<true>(b + r * b_row + c, v);
      } else {
#pragma unroll
        for (int q = 0; q < 4; ++q) {
          v[q] = c + q < H ? static_cast<float>(b[r * b_row + c + q]) : 0.0f;
        }
      }
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[q % 2][r] = fmaf(w[c + q], v[q], acc[q % 2][r]);
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r) sums[r] = acc[0][r] + acc[1][r];
}

// As local_dots: 4-wide loads where H % 4 == 0 aligns b and its rows.
template <int kRows, int kWChunks, typename T>
__device__ __forceinline__ void register_dots(const float (&w)[4 * kWChunks], const T* b,
                                              int b_row, int H, float (&sums)[kRows]) {
  if (H % 4 == 0) {
    register_dots_with<kRows, kWChunks, true>(w, b, b_row, H, sums);
  } else {
    register_dots_with<kRows, kWChunks, false>(w, b, b_row, H, sums);
  }
}

// A thread's 4 kWChunks values of W_hh in registers, w[(first + c) * step] for c < H and
// zeros past it; nothing for a thread past the 3H a block needs.
template <int kWChunks, typename T>
__device__ __forceinline__ void load_register_row(const T* w, int first, int step, int H,
                                                  bool thread_used, float (&row)[4 * kWChunks]) {
#pragma unroll
  for (int c = 0; c < 4 * kWChunks; ++c) {
    row[c] = thread_used && c < H ? static_cast<float>(w[first + c * step]) : 0.0f;
  }
}

// The backward's kWChunks for the plan's register_chunks (local_register_chunks in
// persistent_plan.h; the forward takes them as they are). Its element pass keeps more
// values live, so at 32 chunks it holds 28 in registers (within 168 registers a thread)
// and reads the rest of its column from shared memory.
constexpr int backward_register_chunks(int64_t plan_chunks) {
  return plan_chunks == 32 ? 28 : static_cast<int>(plan_chunks);
}
// A block's threads at most: one per gate row (or column) of the largest H the variant
// takes, 4 plan chunks.
constexpr int local_max_threads(int kWChunks) {
  return kWChunks == 0 ? static_cast<int>(kLocalMaxThreads) : kWChunks <= 16 ? 192 : 384;
}

// kWChunks (both passes): 0 keeps W_hh in shared memory; else a thread holds its part of
// W_hh in registers, 4 kWChunks values: the forward a gate row, the backward a gate
// block's column.
template <typename scalar_t, bool kSave, int kRows, int kWChunks>
__global__ void __launch_bounds__(local_max_threads(kWChunks), 1)
    local_forward_kernel(const PersistentForwardArgs args) {
  using acc_t = at::opmath_type<scalar_t>;
  GRU_DYNAMIC_SHARED_FLOATS(smem);
  const PersistentShape& s = args.shape;
  const int H = static_cast<int>(s.H), G = 3 * H, N = static_cast<int>(s.N);
  const LocalRows block = local_rows<kRows>(s);
  const int d = block.d;
  const LocalForwardSlots slots = local_forward_slots(H, kRows);
  const int w_stride = static_cast<int>(slots.w_stride);
  float* w_t = smem;  // W_hh^T, H rows of w_stride: a thread's gate row is a column
  float* gh_s = smem + slots.gh;
  scalar_t* gx_s = reinterpret_cast<scalar_t*>(smem + slots.gx);
  scalar_t* h_s = reinterpret_cast<scalar_t*>(smem + slots.h);
  scalar_t* b_s = reinterpret_cast<scalar_t*>(smem + slots.bias);  // b_ih, then b_hh

  const scalar_t* w = static_cast<const scalar_t*>(args.w_hh[d]);
  float w_row[kWChunks > 0 ? 4 * kWChunks : 1];
  if constexpr (kWChunks > 0) {
    const int j = threadIdx.x;
    load_register_row<kWChunks>(w, j * H, 1, H, j < G, w_row);
  } else {
    for (int e = threadIdx.x; e < G * H; e += blockDim.x) {
      const int j = e / H, c = e - j * H;
      w_t[c * w_stride + j] = static_cast<float>(w[e]);
    }
  }
  const scalar_t* b_ih = static_cast<const scalar_t*>(args.b_ih[d]);
  const scalar_t* b_hh = static_cast<const scalar_t*>(args.b_hh[d]);
  for (int j = threadIdx.x; j < G; j += blockDim.x) {
    b_s[j] = b_ih[j];
    b_s[G + j] = b_hh[j];
  }
  scalar_t* h_buf = static_cast<scalar_t*>(args.h_buf);
  const scalar_t* h0 = h_buf + (static_cast<int64_t>(d) * N + block.n0) * H;
  // Rows past N (the last block) are multiplied too, their products unused: zeros.
  for (int e = threadIdx.x; e < kRows * H; e += blockDim.x) {
    h_s[e] = e < block.rows * H ? h0[e] : scalar_t(0);
  }
  __syncthreads();

  const scalar_t* gx = static_cast<const scalar_t*>(args.gx);
  scalar_t* out = static_cast<scalar_t*>(args.out);
  scalar_t* saved = static_cast<scalar_t*>(args.saved);
  const auto [gx_stride, out_stride, saved_stride] = row_strides(s);
  for (int64_t i = 0; i < s.T; ++i) {
    const StepRows step = step_rows(s, i, d);
    const int live = live_rows(step, block);
    if (live == 0) continue;  // block-uniform; ended rows keep their state in h_s
    const int64_t row0 = step.first + block.n0;

    // gh = h W_hh^T, a gate row a thread; the step's gx for that column is loaded first
    // so that its latency passes during the product.
    for (int j = threadIdx.x; j < G; j += blockDim.x) {
      scalar_t gx_next[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        gx_next[r] = r < live ? gx[(row0 + r) * gx_stride + d * G + j] : scalar_t(0);
      }
      float gh[kRows];
      if constexpr (kWChunks > 0) {
        register_dots<kRows, kWChunks>(w_row, h_s, H, H, gh);  // j is threadIdx.x
      } else {
        local_dots<kRows>(w_t + j, w_stride, h_s, H, H, gh);
      }
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        gh_s[r * G + j] = gh[r];
        gx_s[r * G + j] = gx_next[r];
      }
      if (i + 1 < s.T) {  // the next step's gx for this column, on its way during the rest
        const StepRows next = step_rows(s, i + 1, d);
        const int next_live = live_rows(next, block);
        for (int r = 0; r < next_live; ++r) {
          prefetch_l1(gx + (next.first + block.n0 + r) * gx_stride + d * G + j);
        }
      }
    }
    __syncthreads();

    // The state is updated in place: every product read it before the barrier above.
    for (int e = threadIdx.x; e < live * H; e += blockDim.x) {
      const int r = e / H, u = e - r * H;
      const int64_t row = row0 + r;
      gru_forward_element<acc_t, kSave>(
          gx_s + r * G, gh_s + r * G + u, H, b_s, b_s + G, h_s + r * H, h_s + r * H,
          out + row * out_stride + d * H,
          kSave ? saved + row * saved_stride + d * kSavedBlocks * H : nullptr, u, H);
    }
    __syncthreads();
  }
  scalar_t* h_n = h_buf + ((s.T % 2) * s.D + d) * N * H + static_cast<int64_t>(block.n0) * H;
  for (int e = threadIdx.x; e < block.rows * H; e += blockDim.x) h_n[e] = h_s[e];
}

template <typename scalar_t, int kRows, int kWChunks>
__global__ void __launch_bounds__(local_max_threads(kWChunks), 1)
    local_backward_kernel(const PersistentBackwardArgs args) {
  using acc_t = at::opmath_type<scalar_t>;
  GRU_DYNAMIC_SHARED_FLOATS(smem);
  const PersistentShape& s = args.shape;
  const int H = static_cast<int>(s.H), G = 3 * H, N = static_cast<int>(s.N);
  const LocalRows block = local_rows<kRows>(s);
  const int d = block.d;
  const LocalBackwardSlots slots = local_backward_slots(H, kRows);
  float* w_s = smem;  // W_hh's gate blocks, w_block apart: a thread's unit is a column
  scalar_t* dgh_s = reinterpret_cast<scalar_t*>(smem + slots.dgh);
  scalar_t* dh_s = reinterpret_cast<scalar_t*>(smem + slots.dh);
  float* part_s = smem + slots.partial;  // (3, kRows, H): dgh W_hh by gate block

  const scalar_t* w = static_cast<const scalar_t*>(args.w_hh[d]);
  const int w_block = static_cast<int>(slots.w_block);
  float w_col[kWChunks > 0 ? 4 * kWChunks : 1];  // thread g H + u: W_hh[g H + c, u]
  constexpr int kInRegisters = 4 * kWChunks;    // of the column; the rest from w_s
  if constexpr (kWChunks > 0) {
    const int t = threadIdx.x, g = t / H;
    load_register_row<kWChunks>(w, g * H * H + (t - g * H), H, H, t < G, w_col);
  }
  // Each gate block's rows from first_row on in shared memory: all without registers.
  const int first_row = kWChunks == 0 ? 0 : H < kInRegisters ? H : kInRegisters;
  const int tail = (H - first_row) * H;  // values of a gate block
  for (int e = threadIdx.x; e < 3 * tail; e += blockDim.x) {
    const int g = e / tail, in_block = first_row * H + e - g * tail;
    w_s[g * w_block + in_block] = static_cast<float>(w[g * H * H + in_block]);
  }
  // dgh rows beyond a step's live ones are multiplied too (their products unused): zeros
  // rather than whatever shared memory held.
  for (int e = threadIdx.x; e < kRows * G; e += blockDim.x) dgh_s[e] = scalar_t(0);
  const int64_t dh_first = (static_cast<int64_t>(d) * N + block.n0) * H;
  for (int e = threadIdx.x; e < block.rows * H; e += blockDim.x) {
    dh_s[e] = static_cast<const scalar_t*>(args.dh)[dh_first + e];
  }
  __syncthreads();

  // This direction's columns of each row; rows are the strides apart (a few thousand).
  const scalar_t* grad_out = static_cast<const scalar_t*>(args.grad_out) + d * H;
  const scalar_t* saved = static_cast<const scalar_t*>(args.saved) + d * kSavedBlocks * H;
  scalar_t* dgx = static_cast<scalar_t*>(args.dgx) + d * G;
  scalar_t* dgh_n = static_cast<scalar_t*>(args.dgh_n) + d * H;
  const int D = static_cast<int>(s.D);
  const int gx_stride = D * G, out_stride = D * H, saved_stride = D * kSavedBlocks * H;
  // The rows live at the last step done have their products in part_s, added to their
  // dh at the start of the next step done (or at the end): a row's dh is complete before
  // its next element step, and rows not live at a step keep theirs.
  const auto add_products = [&](int e) {
    const float* part = part_s + e;  // e = r * H + u
    return static_cast<float>(dh_s[e]) + part[0] + part[kRows * H] + part[2 * kRows * H];
  };
  int live_before = 0;
  for (int64_t i = s.T - 1; i >= 0; --i) {
    const StepRows step = step_rows(s, i, d);
    const int live = live_rows(step, block);
    if (live == 0) continue;  // block-uniform
    const int64_t row0 = step.first + block.n0;

    const int touched = live > live_before ? live : live_before;
    for (int e = threadIdx.x; e < touched * H; e += blockDim.x) {
      const int r = e / H, u = e - r * H;
      if (r < live_before) dh_s[e] = add_products(e);
      if (r >= live) continue;
      const int64_t row = row0 + r;
      gru_backward_element<acc_t>(grad_out + row * out_stride, dh_s + r * H,
                                  saved + row * saved_stride, dgx + row * gx_stride,
                                  dgh_s + r * G + u, H, dgh_n + row * out_stride, u, H);
    }
    if (i > 0) {  // the next step's inputs, fetched during the product below
      const StepRows next = step_rows(s, i - 1, d);
      const int64_t next_row0 = next.first + block.n0;
      for (int e = threadIdx.x; e < live_rows(next, block) * H; e += blockDim.x) {
        const int r = e / H;
        prefetch_backward_inputs(grad_out + (next_row0 + r) * out_stride,
                                 saved + (next_row0 + r) * saved_stride, e - r * H, H);
      }
    }
    __syncthreads();

    // Thread (gate block g, unit u): sum over that block's H rows of dgh[r, g H + c] *
    // W_hh[g H + c, u].
    for (int t = threadIdx.x; t < G; t += blockDim.x) {
      const int g = t / H, u = t - g * H;
      float sums[kRows];
      if constexpr (kWChunks > 0) {
        register_dots<kRows, kWChunks>(w_col, dgh_s + g * H, G, H, sums);  // t is threadIdx.x
        if (H > kInRegisters) {
          float rest[kRows];
          local_dots<kRows>(w_s + g * w_block + kInRegisters * H + u, H,
                            dgh_s + g * H + kInRegisters, G, H - kInRegisters, rest);
#pragma unroll
          for (int r = 0; r < kRows; ++r) sums[r] += rest[r];
        }
      } else {
        local_dots<kRows>(w_s + g * w_block + u, H, dgh_s + g * H, G, H, sums);
      }
#pragma unroll
      for (int r = 0; r < kRows; ++r) part_s[(g * kRows + r) * H + u] = sums[r];
    }
    __syncthreads();
    live_before = live;
  }
  scalar_t* dh = static_cast<scalar_t*>(args.dh) + dh_first;
  for (int e = threadIdx.x; e < block.rows * H; e += blockDim.x) {
    dh[e] = e < live_before * H ? add_products(e) : static_cast<float>(dh_s[e]);
  }
}

// fn(std::integral_constant<int, R>{}) for the built R (1, 2, 4, 8) that rows_per_block is.
template <typename Fn>
auto with_local_rows(int64_t rows_per_block, const Fn& fn) {
  static_assert(kLocalMaxRows == 8, "the largest instantiation below");
  if (rows_per_block <= 1) return fn(std::integral_constant<int, 1>{});
  if (rows_per_block <= 2) return fn(std::integral_constant<int, 2>{});
  if (rows_per_block <= 4) return fn(std::integral_constant<int, 4>{});
  return fn(std::integral_constant<int, 8>{});
}

// fn(kRows, kPlanChunks) for rows_per_block and register_chunks (0, 16 or 32; 32 only
// with up to 2 rows, as the plan gives it), as integral constants.
template <typename Fn>
auto with_local_variant(int64_t rows_per_block, int64_t register_chunks, const Fn& fn) {
  return with_local_rows(rows_per_block, [&](auto rows) {
    constexpr int kRows = decltype(rows)::value;
    if (register_chunks == 16) return fn(rows, std::integral_constant<int, 16>{});
    if constexpr (kRows <= kLocalMaxRowsAt32Chunks) {
      if (register_chunks == 32) return fn(rows, std::integral_constant<int, 32>{});
    }
    return fn(rows, std::integral_constant<int, 0>{});
  });
}

// fn(kernel, kRows, kWChunks) with the local kernels built for that variant.
template <typename scalar_t, bool kSave, typename Fn>
auto with_local_forward_kernel(int64_t rows_per_block, int64_t register_chunks, const Fn& fn) {
  return with_local_variant(rows_per_block, register_chunks, [&](auto rows, auto chunks) {
    constexpr int kRows = decltype(rows)::value;
    constexpr int kWChunks = decltype(chunks)::value;
    return fn(local_forward_kernel<scalar_t, kSave, kRows, kWChunks>, kRows, kWChunks);
  });
}

template <typename scalar_t, typename Fn>
auto with_local_backward_kernel(int64_t rows_per_block, int64_t register_chunks, const Fn& fn) {
  return with_local_variant(rows_per_block, register_chunks, [&](auto rows, auto chunks) {
    constexpr int kRows = decltype(rows)::value;
    constexpr int kWChunks = backward_register_chunks(decltype(chunks)::value);
    return fn(local_backward_kernel<scalar_t, kRows, kWChunks>, kRows, kWChunks);
  });
}

}  // namespace persistent_kernels
}  // namespace gru_cuda
