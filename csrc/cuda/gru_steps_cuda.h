#pragma once

#include "../gru_layer.h"

namespace gru_cuda {

extern const StepKernels cuda_step_kernels;

// The persistent layer runners (persistent_layer.cpp): true when they ran the layer.
bool persistent_layer_forward(const LayerForward& layer);
bool persistent_layer_backward(const LayerBackward& layer);

}  // namespace gru_cuda
