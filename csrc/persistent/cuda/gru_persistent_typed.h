// The launches for one scalar type, defined in gru_persistent_launch.cuh and instantiated
// once a type in gru_persistent_{float,half,bfloat16}.cu; gru_persistent.cu dispatches.
#pragma once

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cuda_runtime_api.h>

#include "../persistent_args.h"

namespace gru_cuda {
namespace persistent_launch {

template <typename scalar_t>
cudaError_t launch_forward_typed(const PersistentForwardArgs& args, int device,
                                 cudaStream_t stream);
template <typename scalar_t>
cudaError_t launch_backward_typed(const PersistentBackwardArgs& args, int device,
                                  cudaStream_t stream);

#define GRU_PERSISTENT_TYPED(extern_, scalar_t)                                           \
  extern_ template cudaError_t launch_forward_typed<scalar_t>(const PersistentForwardArgs&, \
                                                              int, cudaStream_t);          \
  extern_ template cudaError_t launch_backward_typed<scalar_t>(                            \
      const PersistentBackwardArgs&, int, cudaStream_t);
GRU_PERSISTENT_TYPED(extern, float)
GRU_PERSISTENT_TYPED(extern, c10::Half)
GRU_PERSISTENT_TYPED(extern, c10::BFloat16)

}  // namespace persistent_launch
}  // namespace gru_cuda
