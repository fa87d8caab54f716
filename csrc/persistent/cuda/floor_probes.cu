// Probes of what bounds a persistent step, timed on the device in the run that measures the
// kernels (issue: the floor of a step is its FLOPs at the measured rates plus one barrier):
// a grid barrier, a cluster barrier, and the FFMA and mma.sync rates of the whole device.
#include <c10/util/BFloat16.h>
#include <cooperative_groups.h>

#include "floor_probes.h"
#include "mma_m16n8k16.cuh"

namespace gru_cuda {
namespace {

namespace cg = cooperative_groups;

constexpr int kProbeThreads = 256;

__global__ void __launch_bounds__(kProbeThreads) grid_barrier_probe(int iterations) {
  const cg::grid_group grid = cg::this_grid();
  for (int i = 0; i < iterations; ++i) grid.sync();
}

__global__ void __launch_bounds__(kProbeThreads) cluster_barrier_probe(int iterations) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 900
  const cg::cluster_group cluster = cg::this_cluster();
  for (int i = 0; i < iterations; ++i) cluster.sync();
#else
  __trap();
#endif
}

// 8 independent chains a thread; the sum is stored so that the compiler keeps the work.
__global__ void __launch_bounds__(kProbeThreads) ffma_probe(int iterations, float* sink) {
  float acc[8];
#pragma unroll
  for (int c = 0; c < 8; ++c) acc[c] = threadIdx.x * 1e-3f + c;
  const float a = 1.0000001f, b = 1e-7f;
  for (int i = 0; i < iterations; ++i) {
#pragma unroll
    for (int c = 0; c < 8; ++c) acc[c] = fmaf(acc[c], a, b);
  }
  float total = 0.0f;
#pragma unroll
  for (int c = 0; c < 8; ++c) total += acc[c];
  if (total == 12345.0f) sink[0] = total;  // never true; keeps the chains alive
}

// 4 independent accumulators a warp; kTf32: m16n8k8 TF32, else m16n8k16 bfloat16.
template <bool kTf32>
__global__ void __launch_bounds__(kProbeThreads) mma_probe(int iterations, float* sink) {
  float acc[4][4] = {};
  const uint32_t a[4] = {threadIdx.x, threadIdx.x + 1, threadIdx.x + 2, threadIdx.x + 3};
  const uint32_t b[2] = {threadIdx.x * 3u, threadIdx.x * 5u};
  for (int i = 0; i < iterations; ++i) {
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      if constexpr (kTf32) {
        persistent_kernels::mma_m16n8k8_tf32(acc[q], a, b, acc[q]);
      } else {
        persistent_kernels::mma_m16n8k16<c10::BFloat16>(acc[q], a, b, acc[q]);
      }
    }
  }
  float total = 0.0f;
  for (int q = 0; q < 4; ++q) total += acc[q][0] + acc[q][1] + acc[q][2] + acc[q][3];
  if (total == 12345.0f) sink[0] = total;
}

// Milliseconds of launch(stream), between two events on the stream.
template <typename Launch>
cudaError_t timed(cudaStream_t stream, const Launch& launch, float& ms) {
  cudaEvent_t start = nullptr, stop = nullptr;
  cudaError_t err = cudaEventCreate(&start);
  if (err == cudaSuccess) err = cudaEventCreate(&stop);
  if (err == cudaSuccess) err = cudaEventRecord(start, stream);
  if (err == cudaSuccess) err = launch();
  if (err == cudaSuccess) err = cudaEventRecord(stop, stream);
  if (err == cudaSuccess) err = cudaEventSynchronize(stop);
  if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, start, stop);
  if (start != nullptr) (void)cudaEventDestroy(start);
  if (stop != nullptr) (void)cudaEventDestroy(stop);
  return err;
}

}  // namespace

cudaError_t run_floor_probe(FloorProbe probe, int iterations, int sms, float* sink,
                            cudaStream_t stream, double& value) {
  float ms = 0.0f;
  cudaError_t err = cudaSuccess;
  switch (probe) {
    case FloorProbe::kGridBarrier: {  // one block an SM, as the grid form
      void* params[] = {&iterations};
      err = timed(stream, [&] {
        return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(grid_barrier_probe),
                                           dim3(sms), dim3(kProbeThreads), params, 0, stream);
      }, ms);
      value = 1e3 * ms / iterations;
      break;
    }
    case FloorProbe::kClusterBarrier8:
    case FloorProbe::kClusterBarrier16: {  // one cluster: the barrier's latency
      const unsigned size = probe == FloorProbe::kClusterBarrier8 ? 8 : 16;
      if (size > 8) {
        err = cudaFuncSetAttribute(cluster_barrier_probe,
                                   cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
      }
      cudaLaunchAttribute attribute;
      attribute.id = cudaLaunchAttributeClusterDimension;
      attribute.val.clusterDim.x = size;
      attribute.val.clusterDim.y = attribute.val.clusterDim.z = 1;
      cudaLaunchConfig_t config = {};
      config.gridDim = dim3(size);
      config.blockDim = dim3(kProbeThreads);
      config.stream = stream;
      config.attrs = &attribute;
      config.numAttrs = 1;
      if (err == cudaSuccess) {
        err = timed(stream, [&] {
          return cudaLaunchKernelEx(&config, cluster_barrier_probe, iterations);
        }, ms);
      }
      value = 1e3 * ms / iterations;
      break;
    }
    case FloorProbe::kFfma: {  // 4 blocks an SM, 8 chains a thread: TFLOP/s
      const int blocks = 4 * sms;
      err = timed(stream, [&] {
        ffma_probe<<<blocks, kProbeThreads, 0, stream>>>(iterations, sink);
        return cudaGetLastError();
      }, ms);
      value = 2.0 * 8 * iterations * blocks * kProbeThreads / (ms * 1e9);
      break;
    }
    case FloorProbe::kMmaBf16:
    case FloorProbe::kMmaTf32: {  // 4 blocks an SM, 4 tiles a warp: TFLOP/s
      const bool tf32 = probe == FloorProbe::kMmaTf32;
      const int blocks = 4 * sms;
      err = timed(stream, [&] {
        if (tf32) {
          mma_probe<true><<<blocks, kProbeThreads, 0, stream>>>(iterations, sink);
        } else {
          mma_probe<false><<<blocks, kProbeThreads, 0, stream>>>(iterations, sink);
        }
        return cudaGetLastError();
      }, ms);
      const double flops_a_tile = 2.0 * 16 * 8 * (tf32 ? 8 : 16);
      value = flops_a_tile * 4 * iterations * blocks * (kProbeThreads / 32) / (ms * 1e9);
      break;
    }
  }
  return err;
}

}  // namespace gru_cuda
