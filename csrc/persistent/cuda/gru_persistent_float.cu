// The persistent kernels for float, in a file of their own so that they compile in
// parallel with the other types'.
#include <c10/cuda/CUDAException.h>

#include "gru_persistent.h"
#include "gru_persistent_launch.cuh"

namespace gru_cuda {
namespace persistent_launch {

GRU_PERSISTENT_TYPED(, float)

}  // namespace persistent_launch

// Here, beside the float kernels whose figures they ask for.
PersistentKernelFacts persistent_kernel_facts() {
  cudaFuncAttributes attributes{};
  C10_CUDA_CHECK(cudaFuncGetAttributes(
      &attributes, persistent_kernels::cluster_forward_kernel<float, true, 8, 1>));
  return {static_cast<int64_t>(attributes.sharedSizeBytes), attributes.ptxVersion};
}

bool max_active_clusters(int device, int64_t smem_bytes, int64_t (&clusters)[2]) {
  for (int i = 0; i < 2; ++i) {
    cudaLaunchAttribute attribute;
    cudaLaunchConfig_t config;
    const auto kernel = persistent_kernels::cluster_forward_kernel<float, true, 8, 1>;
    int count = 0;
    cudaError_t err = persistent_launch::cluster_config(
        kernel, kClusterSizes[i], kClusterSizes[i], smem_bytes, device, nullptr, attribute,
        config);
    if (err == cudaSuccess) err = cudaOccupancyMaxActiveClusters(&count, kernel, &config);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // the failed query's own error
      clusters[i] = 0;
      if (i == 0) clusters[1] = 0;
      return i != 0;  // clusters of 16 are non-portable: a device may refuse them alone
    }
    clusters[i] = count;
  }
  return true;
}

}  // namespace gru_cuda
