// Launches of the persistent layer kernels (gru_persistent_kernels.cuh): the shared
// memory attribute, a co-residency check, then one cooperative launch.
#include "gru_persistent.h"
#include "gru_persistent_kernels.cuh"

namespace gru_cuda {
namespace {

using persistent_kernels::with_backward_kernel;
using persistent_kernels::with_forward_kernel;

template <typename Kernel, typename Args>
cudaError_t cooperative_launch(Kernel kernel, const Args& args, int device,
                               cudaStream_t stream) {
  const PersistentShape& s = args.shape;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(s.smem_bytes));
  if (err != cudaSuccess) return err;
  int per_sm = 0, sms = 0;
  err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kPersistentThreads,
                                                      s.smem_bytes);
  if (err != cudaSuccess) return err;
  err = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
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
  const auto launch = [&](auto kernel, int /*chunks*/, int /*rows*/) {
    return cooperative_launch(kernel, args, device, stream);
  };
  const int64_t H = args.shape.H, rows = args.shape.rows_per_warp;
  return args.saved != nullptr ? with_forward_kernel<scalar_t, true>(H, rows, launch)
                               : with_forward_kernel<scalar_t, false>(H, rows, launch);
}

}  // namespace

cudaError_t launch_persistent_forward(const PersistentForwardArgs& args, c10::ScalarType dtype,
                                      int device, cudaStream_t stream) {
  if (args.shape.H > kPersistentMaxHidden) return cudaErrorInvalidValue;
  switch (dtype) {
    case c10::ScalarType::Float:
      return launch_forward_typed<float>(args, device, stream);
    case c10::ScalarType::Half:
      return launch_forward_typed<c10::Half>(args, device, stream);
    case c10::ScalarType::BFloat16:
      return launch_forward_typed<c10::BFloat16>(args, device, stream);
    default:
      return cudaErrorNotSupported;
  }
}

cudaError_t launch_persistent_backward(const PersistentBackwardArgs& args,
                                       c10::ScalarType dtype, int device, cudaStream_t stream) {
  if (args.shape.units_per_block > kPersistentMaxUnits) return cudaErrorInvalidValue;
  const auto launch = [&](auto kernel, int /*units*/) {
    return cooperative_launch(kernel, args, device, stream);
  };
  const int64_t units = args.shape.units_per_block;
  switch (dtype) {
    case c10::ScalarType::Float:
      return with_backward_kernel<float>(units, launch);
    case c10::ScalarType::Half:
      return with_backward_kernel<c10::Half>(units, launch);
    case c10::ScalarType::BFloat16:
      return with_backward_kernel<c10::BFloat16>(units, launch);
    default:
      return cudaErrorNotSupported;
  }
}

}  // namespace gru_cuda
