// CPU registration of the ops: the shared layer driver with the CPU step kernels.
#include <torch/library.h>

#include "../gru_layer.h"
#include "../gru_layer_autocast.h"

namespace gru_cuda {

TORCH_LIBRARY_IMPL(gru_cuda, CPU, m) {
  m.impl("gru_layer", &gru_layer_kernel<cpu_step_kernels>);
  m.impl("gru_layer_backward", &gru_layer_backward_kernel<cpu_step_kernels>);
}

TORCH_LIBRARY_IMPL(gru_cuda, AutocastCPU, m) {
  // As nn.GRU under CPU autocast: the layer stays in its input's dtype (a float32 input
  // is not lowered); hx and the weights follow the input.
  m.impl("gru_layer", &gru_layer_autocast<c10::DeviceType::CPU, c10::DispatchKey::AutocastCPU,
                                          /*kInInputDtype=*/true>);
}

}  // namespace gru_cuda
