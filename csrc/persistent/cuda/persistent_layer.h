// The persistent layer runners (persistent_layer.cpp), a CUDA device's layer_forward and
// layer_backward in its StepKernels: true when they ran the whole layer, false when the
// per-step path must run it.
#pragma once

#include "../../gru_layer.h"

namespace gru_cuda {

bool persistent_layer_forward(const LayerForward& layer);
bool persistent_layer_backward(const LayerBackward& layer);

}  // namespace gru_cuda
