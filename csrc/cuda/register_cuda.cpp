// CUDA registration of the ops: the shared layer driver with the CUDA step kernels, on the
// input's device and its current stream.
#include <torch/library.h>

#include "../gru_layer_autocast.h"
#include "gru_steps_cuda.h"

namespace gru_cuda {

TORCH_LIBRARY_IMPL(gru_cuda, CUDA, m) {
  m.impl("gru_layer", &gru_layer_kernel<cuda_step_kernels>);
  m.impl("gru_layer_backward", &gru_layer_backward_kernel<cuda_step_kernels>);
}

TORCH_LIBRARY_IMPL(gru_cuda, AutocastCUDA, m) {
  // As cuDNN's GRU under CUDA autocast: the whole layer in the autocast dtype.
  m.impl("gru_layer", &gru_layer_autocast<c10::DeviceType::CUDA,
                                          c10::DispatchKey::AutocastCUDA,
                                          /*kInInputDtype=*/false>);
}

}  // namespace gru_cuda
