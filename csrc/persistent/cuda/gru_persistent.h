// Launches of the persistent layer kernels (gru_persistent.cu, which dispatches to one
// file a scalar type): a layer's whole time loop in one launch, W_hh held on chip.
// Raw pointers in, a CUDA error out; persistent_layer.cpp prepares the buffers and says
// what an error means.
#pragma once

#include <c10/core/ScalarType.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "../persistent_args.h"

namespace gru_cuda {

cudaError_t launch_persistent_forward(const PersistentForwardArgs& args, c10::ScalarType dtype,
                                      int device, cudaStream_t stream);
cudaError_t launch_persistent_backward(const PersistentBackwardArgs& args,
                                       c10::ScalarType dtype, int device, cudaStream_t stream);

// What the current device runs of the persistent kernels, alike in each build: their
// static shared memory (1 KB reserved in every sm_90 kernel, none in sm_80's), which the
// dynamic maximum leaves out, and the virtual architecture its code was built for (as 90
// for sm_90). That, not the device's, says whether the bodies of the cluster (90 on) and
// tensor-core (80 on) kernels were built or only trap: a build for 8.0+PTX JIT-compiles
// compute_80 on a Hopper card.
struct PersistentKernelFacts {
  int64_t static_smem;
  int ptx_version;
};
PersistentKernelFacts persistent_kernel_facts();

// The clusters of kClusterSizes blocks, each with smem_bytes of shared memory, `device`
// (the current one) runs at once; false (and none) where the query for the smaller failed,
// none of the larger only where its own query failed.
bool max_active_clusters(int device, int64_t smem_bytes, int64_t (&clusters)[2]);

}  // namespace gru_cuda
