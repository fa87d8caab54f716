// The persistent kernels' entry points: the sizes they were built for, then a dispatch on
// the scalar type to that type's launches (gru_persistent_{float,half,bfloat16}.cu).
#include "gru_persistent.h"
#include "gru_persistent_typed.h"

#include "../persistent_plan.h"

namespace gru_cuda {
namespace {

using persistent_launch::launch_backward_typed;
using persistent_launch::launch_forward_typed;

// Sizes the kernels were not built for (the plan never gives them).
bool outside_instantiations(const PersistentShape& s) {
  if (s.mma != 0 && s.H % 16 != 0) return true;  // a tile's k steps would pass the rows
  if (s.cluster_size > 0) {
    return (s.cluster_size != kClusterSizes[0] && s.cluster_size != kClusterSizes[1]) ||
           forward_chunks(s.H) > 16 || s.rows_per_block < 1 ||
           s.blocks_per_direction % s.cluster_size != 0;
  }
  if (s.rows_per_block > 0) {
    const int64_t r = s.rows_per_block, chunks = s.register_chunks;  // layouts are their own
    return (r != 1 && r != 2 && r != 4 && r != 8) || s.threads > kLocalMaxThreads ||
           (chunks != 0 && (chunks != local_register_chunks(s.H, r) ||
                            s.threads < 3 * s.H ||  // a thread per gate row
                            s.threads > 12 * chunks));
  }
  return s.H > kPersistentMaxHidden || s.units_per_block > kPersistentMaxUnits;
}

}  // namespace

cudaError_t launch_persistent_forward(const PersistentForwardArgs& args, c10::ScalarType dtype,
                                      int device, cudaStream_t stream) {
  if (outside_instantiations(args.shape)) return cudaErrorInvalidValue;
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
  if (outside_instantiations(args.shape)) return cudaErrorInvalidValue;
  switch (dtype) {
    case c10::ScalarType::Float:
      return launch_backward_typed<float>(args, device, stream);
    case c10::ScalarType::Half:
      return launch_backward_typed<c10::Half>(args, device, stream);
    case c10::ScalarType::BFloat16:
      return launch_backward_typed<c10::BFloat16>(args, device, stream);
    default:
      return cudaErrorNotSupported;
  }
}

}  // namespace gru_cuda
