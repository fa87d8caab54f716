#pragma once

#include "../gru_layer.h"

namespace gru_cuda {

extern const StepKernels cuda_step_kernels;

}  // namespace gru_cuda
