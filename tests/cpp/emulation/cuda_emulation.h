// Just enough of CUDA to run a kernel's source on the CPU, one std::thread per CUDA
// thread: the thread and block indices, the vector types used, __syncthreads and the
// grid's (and a cluster's) barrier as std::barrier, a warp's shuffle and tensor-core product through
// shared slots and two barriers, __ldcg as a plain load (the threads share one coherent memory), and dynamic
// shared memory from the launch. A kernel must be launched through emulated_launch.
#pragma once

#include <algorithm>
#include <atomic>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

struct EmulatedDim3 {
  unsigned x = 0, y = 0, z = 0;
};
inline thread_local EmulatedDim3 threadIdx, blockIdx;
// 64 threads a block by default: the kernels read blockDim, and fewer threads run faster.
inline EmulatedDim3 blockDim{64, 1, 1}, gridDim{1, 1, 1};

struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) uint2 {
  unsigned x, y;
};

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(threads, blocks)

#define GRU_CUDA_EMULATION 1

struct EmulatedMmaFragments {
  uint32_t a[4], b[2];
  float c[4];
};

// Counts a cluster's completed barriers (run once per phase, before its threads go on).
struct EmulatedClusterPhase {
  std::atomic<int>* phases;
  void operator()() noexcept { phases->fetch_add(1); }
};

struct EmulatedGrid {
  std::unique_ptr<std::barrier<>> grid;
  std::vector<std::unique_ptr<std::barrier<>>> blocks, warps;
  std::vector<std::unique_ptr<std::barrier<EmulatedClusterPhase>>> clusters;
  std::unique_ptr<std::atomic<int>[]> cluster_phases;  // barriers each cluster completed
  unsigned cluster_size = 1;
  std::vector<float> lanes;                 // a slot per thread, for shuffles
  std::vector<EmulatedMmaFragments> mma;    // a slot per thread, for tensor-core products
  std::vector<std::vector<float>> shared;  // dynamic shared memory per block
};
inline EmulatedGrid* emulated_grid = nullptr;

inline int emulated_warp() {
  return static_cast<int>(blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32);
}

inline void __syncthreads() { emulated_grid->blocks[blockIdx.x]->arrive_and_wait(); }

inline float __shfl_xor_sync(unsigned /*mask*/, float value, int lane_mask) {
  const int warp = emulated_warp(), lane = static_cast<int>(threadIdx.x % 32);
  float* lanes = emulated_grid->lanes.data() + warp * 32;
  lanes[lane] = value;
  emulated_grid->warps[warp]->arrive_and_wait();
  const float other = lanes[lane ^ lane_mask];
  emulated_grid->warps[warp]->arrive_and_wait();  // before anyone writes its slot again
  return other;
}

// A GPU faults on a load of `bytes` from an address not a multiple of them; x86 does not.
inline void emulated_check_aligned(const void* p, size_t bytes) {
  if (reinterpret_cast<uintptr_t>(p) % bytes != 0) {
    std::fprintf(stderr, "misaligned load of %zu bytes at %p\n", bytes, p);
    std::abort();
  }
}

template <typename T>
inline T __ldcg(const T* p) {
  emulated_check_aligned(p, sizeof(T));
  return *p;
}

// mma.sync, m16n8kK, as PTX lays out the fragments (csrc/persistent/cuda/mma_m16n8k16.cuh):
// the warp's fragments meet in shared slots, rebuild(slots, A, B) makes A (16 x K) and
// B (K x 8) from them, and each lane sums its own 4 values of D.
template <int kK, typename Rebuild>
inline void emulated_mma(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                         const float (&c)[4], const Rebuild& rebuild) {
  const int warp = emulated_warp(), lane = static_cast<int>(threadIdx.x % 32);
  EmulatedMmaFragments* slots = emulated_grid->mma.data() + warp * 32;
  slots[lane] = {{a[0], a[1], a[2], a[3]}, {b[0], b[1]}, {c[0], c[1], c[2], c[3]}};
  emulated_grid->warps[warp]->arrive_and_wait();
  float A[16][kK], B[kK][8];
  rebuild(slots, A, B);
  const int g = lane / 4, t = lane % 4;
  const int row[4] = {g, g, g + 8, g + 8}, col[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
  float out[4];
  for (int i = 0; i < 4; ++i) {
    float sum = slots[lane].c[i];
    for (int k = 0; k < kK; ++k) sum += A[row[i]][k] * B[k][col[i]];
    out[i] = sum;
  }
  emulated_grid->warps[warp]->arrive_and_wait();  // before anyone writes its slot again
  for (int i = 0; i < 4; ++i) d[i] = out[i];
}

// One of a register's two 16-bit values (the lower first) as T, in float.
template <typename T>
inline float emulated_half(uint32_t pair, int upper) {
  return static_cast<float>(
      T(static_cast<uint16_t>(upper != 0 ? pair >> 16 : pair & 0xffffu), T::from_bits()));
}

// m16n8k16 with T c10::BFloat16 or c10::Half.
template <typename T>
inline void emulated_mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                  const float (&c)[4]) {
  emulated_mma<16>(d, a, b, c, [](const EmulatedMmaFragments* slots, auto& A, auto& B) {
    for (int l = 0; l < 32; ++l) {
      const int g = l / 4, t = l % 4;
      for (int h = 0; h < 2; ++h) {
        A[g][2 * t + h] = emulated_half<T>(slots[l].a[0], h);
        A[g + 8][2 * t + h] = emulated_half<T>(slots[l].a[1], h);
        A[g][2 * t + 8 + h] = emulated_half<T>(slots[l].a[2], h);
        A[g + 8][2 * t + 8 + h] = emulated_half<T>(slots[l].a[3], h);
        B[2 * t + h][g] = emulated_half<T>(slots[l].b[0], h);
        B[2 * t + 8 + h][g] = emulated_half<T>(slots[l].b[1], h);
      }
    }
  });
}

// cvt.rna.tf32.f32: the 13 low mantissa bits rounded off, to nearest, ties away from 0.
inline uint32_t emulated_to_tf32(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  if ((bits & 0x7f800000u) != 0x7f800000u) bits += 0x1000u;  // not inf or NaN
  return bits & 0xffffe000u;
}

// m16n8k8 with TF32 inputs (registers holding float bits).
inline void emulated_mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4],
                                      const uint32_t (&b)[2], const float (&c)[4]) {
  const auto value = [](uint32_t bits) {
    float x;
    std::memcpy(&x, &bits, sizeof(x));
    return x;
  };
  emulated_mma<8>(d, a, b, c, [&](const EmulatedMmaFragments* slots, auto& A, auto& B) {
    for (int l = 0; l < 32; ++l) {
      const int g = l / 4, t = l % 4;
      A[g][t] = value(slots[l].a[0]);
      A[g + 8][t] = value(slots[l].a[1]);
      A[g][t + 4] = value(slots[l].a[2]);
      A[g + 8][t + 4] = value(slots[l].a[3]);
      B[t][g] = value(slots[l].b[0]);
      B[t + 4][g] = value(slots[l].b[1]);
    }
  });
}

#define GRU_DYNAMIC_SHARED_FLOATS(name) \
  float* name = emulated_grid->shared[blockIdx.x].data()

// Runs kernel() on grid x blockDim.x threads with shared_bytes of shared memory per
// block, filled with NaN so that a read of what no thread wrote shows; in clusters of
// cluster_size consecutive blocks.
constexpr size_t kSharedGuard = 256;  // floats past a block's shared memory

inline void emulated_launch(int64_t grid, int64_t shared_bytes,
                            const std::function<void()>& kernel, int64_t cluster_size = 1) {
  EmulatedGrid state;
  const int64_t threads = grid * blockDim.x;
  state.grid = std::make_unique<std::barrier<>>(threads);
  state.cluster_size = static_cast<unsigned>(cluster_size);
  state.cluster_phases = std::make_unique<std::atomic<int>[]>(grid / cluster_size);
  for (int64_t c = 0; c < grid / cluster_size; ++c) {
    state.clusters.push_back(std::make_unique<std::barrier<EmulatedClusterPhase>>(
        cluster_size * blockDim.x, EmulatedClusterPhase{&state.cluster_phases[c]}));
  }
  for (int64_t b = 0; b < grid; ++b) {
    state.blocks.push_back(std::make_unique<std::barrier<>>(blockDim.x));
    // All ones: a NaN read as float, half or bfloat16 alike (a float NaN's low 16 bits
    // may be zeros, which a half type reads as 0), so an unwritten value shows. Guard
    // values past the launch's shared memory catch a write beyond it.
    state.shared.emplace_back(shared_bytes / sizeof(float) + kSharedGuard,
                              std::bit_cast<float>(~0u));
  }
  for (int64_t w = 0; w < threads / 32; ++w) {
    state.warps.push_back(std::make_unique<std::barrier<>>(32));
  }
  state.lanes.assign(threads, 0.0f);
  state.mma.resize(threads);
  emulated_grid = &state;
  gridDim.x = static_cast<unsigned>(grid);
  std::vector<std::thread> pool;
  for (int64_t b = 0; b < grid; ++b) {
    for (unsigned t = 0; t < blockDim.x; ++t) {
      pool.emplace_back([&kernel, b, t] {
        blockIdx.x = static_cast<unsigned>(b);
        threadIdx.x = t;
        kernel();
      });
    }
  }
  for (std::thread& thread : pool) thread.join();
  emulated_grid = nullptr;
  for (int64_t b = 0; b < grid; ++b) {
    const std::vector<float>& shared = state.shared[b];
    for (size_t i = shared.size() - kSharedGuard; i < shared.size(); ++i) {
      if (std::bit_cast<uint32_t>(shared[i]) != ~0u) {
        std::fprintf(stderr, "block %lld wrote past its %lld bytes of shared memory\n",
                     static_cast<long long>(b), static_cast<long long>(shared_bytes));
        std::abort();
      }
    }
  }
}
