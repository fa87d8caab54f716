// The CUDA device's StepKernels: the per-step elementwise kernels, with the persistent
// layer runners (csrc/persistent/cuda/) in front of them, the graph replay of the
// per-step loop (csrc/replay/cuda/) around them, and the direct cuBLAS GEMMs
// (csrc/gemm/cuda/) where switched on.
#pragma once

#include "../gru_layer.h"

namespace gru_cuda {

extern const StepKernels cuda_step_kernels;

}  // namespace gru_cuda
