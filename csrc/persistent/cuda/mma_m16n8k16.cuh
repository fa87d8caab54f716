// Warp-wide tensor-core products, mma.sync (sm_80 and later). m16n8k16: D (16x8, float)
// = A (16x16) B (16x8) + C, A and B in float16 or bfloat16; m16n8k8 in TF32 below. Each lane holds fragments
// (g = lane / 4, t = lane % 4; two 16-bit values a register, the lower one first):
//   a[0] = A[g][2t, 2t+1]   a[1] = A[g+8][2t, 2t+1]   a[2] = A[g][2t+8, 2t+9]
//   a[3] = A[g+8][2t+8, 2t+9]   b[0] = B[2t, 2t+1][g]   b[1] = B[2t+8, 2t+9][g]
//   c, d = {X[g][2t], X[g][2t+1], X[g+8][2t], X[g+8][2t+1]}
// The tests' CPU emulation supplies emulated_mma_m16n8k16 with the same layout.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstdint>
#include <type_traits>

namespace gru_cuda {
namespace persistent_kernels {

// One mma.sync of the given shape and types on d, a, b and c as named below: 4 float
// accumulators, 4 A registers, 2 B registers.
#define GRU_MMA_SYNC(kind)                                                                 \
  asm volatile("mma.sync.aligned." kind                                                   \
               " {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%10,%11,%12,%13};\n"            \
               : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])                            \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]),        \
                 "f"(c[0]), "f"(c[1]), "f"(c[2]), "f"(c[3]))

template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4],
                                             const uint32_t (&b)[2], const float (&c)[4]) {
  static_assert(std::is_same_v<T, c10::BFloat16> || std::is_same_v<T, c10::Half>,
                "tensor cores take float16 or bfloat16 here");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  if constexpr (std::is_same_v<T, c10::BFloat16>) {
    GRU_MMA_SYNC("m16n8k16.row.col.f32.bf16.bf16.f32");
  } else {
    GRU_MMA_SYNC("m16n8k16.row.col.f32.f16.f16.f32");
  }
#elif defined(__CUDA_ARCH__)
  __trap();  // built for a GPU before sm_80: the plan's tensor cores cannot run there
#elif defined(GRU_CUDA_EMULATION)
  emulated_mma_m16n8k16<T>(d, a, b, c);
#endif
}

// float32 rounded to TF32 (10 mantissa bits, to nearest, ties away), as a register.
__device__ __forceinline__ uint32_t to_tf32(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
#elif defined(__CUDA_ARCH__)
  __trap();
  return 0;
#elif defined(GRU_CUDA_EMULATION)
  return emulated_to_tf32(x);
#else
  return 0;
#endif
}

// mma.sync m16n8k8 on TF32 inputs (registers from to_tf32), float accumulation. Each
// lane holds (g = lane / 4, t = lane % 4):
//   a[0] = A[g][t]   a[1] = A[g+8][t]   a[2] = A[g][t+4]   a[3] = A[g+8][t+4]
//   b[0] = B[t][g]   b[1] = B[t+4][g]   c, d as for m16n8k16.
__device__ __forceinline__ void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4],
                                                 const uint32_t (&b)[2], const float (&c)[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  GRU_MMA_SYNC("m16n8k8.row.col.f32.tf32.tf32.f32");
#elif defined(__CUDA_ARCH__)
  __trap();
#elif defined(GRU_CUDA_EMULATION)
  emulated_mma_m16n8k8_tf32(d, a, b, c);
#endif
}

}  // namespace persistent_kernels
}  // namespace gru_cuda
