// The persistent kernels' launches for one scalar type, shared by the three files that
// instantiate them (gru_persistent_float.cu, _half.cu, _bfloat16.cu): one file each, so
// that a build compiles the three types' kernels in parallel. The grid form gets the
// shared memory attribute, a co-residency check, then one cooperative launch; the local
// form an ordinary launch; the cluster form an ordinary launch with a cluster dimension.
#pragma once

#include <c10/cuda/CUDAGuard.h>

#include "gru_cluster_kernels.cuh"
#include "gru_local_kernels.cuh"
#include "gru_persistent_kernels.cuh"
#include "gru_persistent_typed.h"

#include <map>
#include <mutex>
#include <tuple>

namespace gru_cuda {
namespace persistent_launch {

using persistent_kernels::with_backward_kernel;
using persistent_kernels::with_cluster_backward_kernel;
using persistent_kernels::with_cluster_forward_kernel;
using persistent_kernels::with_forward_kernel;
using persistent_kernels::with_local_backward_kernel;
using persistent_kernels::with_local_forward_kernel;

// What a launch asks the runtime about a kernel on a device, asked once a key: each
// question costs microseconds of host time, and a layer's whole run is one launch. A
// failed answer is not kept. Asked with the key's device current, since a function's
// attributes are set in the current device's context.
// Key: kernel, device, and the launch's shared memory bytes (-1, -2: the attributes set).
using KernelFactKey = std::tuple<const void*, int, int64_t>;
struct KernelFacts {
  std::mutex mutex;
  std::map<KernelFactKey, int> known;
};
inline KernelFacts& kernel_facts() {
  static KernelFacts facts;
  return facts;
}
template <typename Compute>
cudaError_t kernel_fact(const KernelFactKey& key, int& value, const Compute& compute) {
  KernelFacts& facts = kernel_facts();
  {
    const std::lock_guard<std::mutex> lock(facts.mutex);
    const auto found = facts.known.find(key);
    if (found != facts.known.end()) {
      value = found->second;
      return cudaSuccess;
    }
  }
  const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(std::get<1>(key)));
  const cudaError_t err = compute(value);
  if (err == cudaSuccess) {
    const std::lock_guard<std::mutex> lock(facts.mutex);
    facts.known.emplace(key, value);
  }
  return err;
}

// Lets `kernel` take all the dynamic shared memory the device allows it: the opt-in maximum
// less its static shared memory (1 KB in sm_90 builds). Always that value, never the
// launch's need, so that threads launching other shapes never lower it under each other;
// so set once a kernel and device.
template <typename Kernel>
cudaError_t allow_dynamic_smem(Kernel kernel, int device) {
  int allowed = 0;
  const KernelFactKey key{reinterpret_cast<const void*>(kernel), device, -1};
  return kernel_fact(key, allowed, [&](int& bytes) {
    int optin = 0;
    cudaFuncAttributes attributes{};
    cudaError_t e =
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (e == cudaSuccess) e = cudaFuncGetAttributes(&attributes, kernel);
    if (e != cudaSuccess) return e;
    bytes = optin - static_cast<int>(attributes.sharedSizeBytes);
    return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  });
}

// The local form's blocks never wait for each other: any grid runs, in waves if need be.
template <typename Kernel, typename Args>
cudaError_t local_launch(Kernel kernel, const Args& args, int device, cudaStream_t stream) {
  const PersistentShape& s = args.shape;
  const cudaError_t err = allow_dynamic_smem(kernel, device);
  if (err != cudaSuccess) return err;
  void* params[] = {const_cast<Args*>(&args)};
  return cudaLaunchKernel(reinterpret_cast<const void*>(kernel),
                          dim3(static_cast<unsigned int>(s.blocks_per_direction * s.D)),
                          dim3(static_cast<unsigned int>(s.threads)), params, s.smem_bytes,
                          stream);
}

// A launch of `grid` blocks in clusters of cluster_size, each block with smem_bytes; the
// attributes a cluster of over 8 blocks and that much shared memory need set first.
template <typename Args>
cudaError_t cluster_config(void (*kernel)(Args), int64_t grid, int64_t cluster_size,
                           int64_t smem_bytes, int device, cudaStream_t stream,
                           cudaLaunchAttribute& attribute, cudaLaunchConfig_t& config) {
  cudaError_t err = allow_dynamic_smem(kernel, device);
  int allowed = 0;
  if (err == cudaSuccess && cluster_size > 8) {
    err = kernel_fact({reinterpret_cast<const void*>(kernel), device, -2}, allowed, [&](int& v) {
      v = 1;
      return cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
    });
  }
  attribute.id = cudaLaunchAttributeClusterDimension;
  attribute.val.clusterDim.x = static_cast<unsigned int>(cluster_size);
  attribute.val.clusterDim.y = attribute.val.clusterDim.z = 1;
  config = {};
  config.gridDim = dim3(static_cast<unsigned int>(grid));
  config.blockDim = dim3(kPersistentThreads);
  config.dynamicSmemBytes = static_cast<size_t>(smem_bytes);
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = 1;
  return err;
}

// Clusters never wait for each other: any grid runs, in waves if need be.
template <typename Args>
cudaError_t cluster_launch(void (*kernel)(Args), const Args& args, int device,
                           cudaStream_t stream) {
  const PersistentShape& s = args.shape;
  cudaLaunchAttribute attribute;
  cudaLaunchConfig_t config;
  const cudaError_t err = cluster_config(kernel, s.blocks_per_direction * s.D, s.cluster_size,
                                         s.smem_bytes, device, stream, attribute, config);
  return err != cudaSuccess ? err : cudaLaunchKernelEx(&config, kernel, args);
}

template <typename Kernel, typename Args>
cudaError_t cooperative_launch(Kernel kernel, const Args& args, int device,
                               cudaStream_t stream) {
  const PersistentShape& s = args.shape;
  cudaError_t err = allow_dynamic_smem(kernel, device);
  if (err != cudaSuccess) return err;
  int per_sm = 0, sms = 0;
  const void* key = reinterpret_cast<const void*>(kernel);
  err = kernel_fact({key, device, s.smem_bytes}, per_sm, [&](int& blocks) {
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kPersistentThreads,
                                                         s.smem_bytes);
  });
  if (err != cudaSuccess) return err;
  err = kernel_fact({nullptr, device, -1}, sms, [&](int& count) {
    return cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device);
  });
  if (err != cudaSuccess) return err;
  const int64_t grid = s.blocks_per_direction * s.D;
  // Every block must be resident at once, or the grid barrier would wait forever; the
  // cooperative launch refuses such a grid too, but say it before trying.
  if (static_cast<int64_t>(per_sm) * sms < grid) return cudaErrorCooperativeLaunchTooLarge;
  void* params[] = {const_cast<Args*>(&args)};
  return cudaLaunchCooperativeKernel(reinterpret_cast<const void*>(kernel),
                                     dim3(static_cast<unsigned int>(grid)),
                                     dim3(kPersistentThreads), params, s.smem_bytes, stream);
}

template <typename scalar_t>
cudaError_t launch_forward_typed(const PersistentForwardArgs& args, int device,
                                 cudaStream_t stream) {
  if (args.shape.cluster_size > 0) {
    const auto launch = [&](auto kernel, int /*chunks*/, int /*rows*/) {
      return cluster_launch(kernel, args, device, stream);
    };
    const int64_t H = args.shape.H, rows = args.shape.rows_per_warp;
    const bool mma = args.shape.mma != 0;
    return args.saved != nullptr
               ? with_cluster_forward_kernel<scalar_t, true>(H, rows, mma, launch)
               : with_cluster_forward_kernel<scalar_t, false>(H, rows, mma, launch);
  }
  const int64_t local_rows = args.shape.rows_per_block;
  if (local_rows > 0) {
    const auto launch = [&](auto kernel, int /*rows*/, int /*chunks*/) {
      return local_launch(kernel, args, device, stream);
    };
    const int64_t chunks = args.shape.register_chunks;
    return args.saved != nullptr
               ? with_local_forward_kernel<scalar_t, true>(local_rows, chunks, launch)
               : with_local_forward_kernel<scalar_t, false>(local_rows, chunks, launch);
  }
  const auto launch = [&](auto kernel, int /*chunks*/, int /*rows*/) {
    return cooperative_launch(kernel, args, device, stream);
  };
  const int64_t H = args.shape.H, rows = args.shape.rows_per_warp;
  const bool mma = args.shape.mma != 0;
  return args.saved != nullptr ? with_forward_kernel<scalar_t, true>(H, rows, mma, launch)
                               : with_forward_kernel<scalar_t, false>(H, rows, mma, launch);
}

template <typename scalar_t>
cudaError_t launch_backward_typed(const PersistentBackwardArgs& args, int device,
                                  cudaStream_t stream) {
  if (args.shape.cluster_size > 0) {
    return with_cluster_backward_kernel<scalar_t>(
        args.shape.H, args.shape.rows_per_block, args.shape.mma != 0,
        [&](auto kernel, int /*lane_units*/) {
          return cluster_launch(kernel, args, device, stream);
        });
  }
  if (args.shape.rows_per_block > 0) {
    return with_local_backward_kernel<scalar_t>(
        args.shape.rows_per_block, args.shape.register_chunks,
        [&](auto kernel, int /*rows*/, int /*chunks*/) {
          return local_launch(kernel, args, device, stream);
        });
  }
  return with_backward_kernel<scalar_t>(
      args.shape.units_per_block, args.shape.mma != 0,
      [&](auto kernel, int /*units*/) { return cooperative_launch(kernel, args, device, stream); });
}

}  // namespace persistent_launch
}  // namespace gru_cuda
