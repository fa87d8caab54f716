// The persistent kernels for c10::BFloat16, in a file of their own so that they compile in
// parallel with the other types'.
#include "gru_persistent_launch.cuh"

namespace gru_cuda {
namespace persistent_launch {

GRU_PERSISTENT_TYPED(, c10::BFloat16)

}  // namespace persistent_launch
}  // namespace gru_cuda
