// The recurrent GEMMs of the CUDA per-step loop on cuBLAS directly, set up once per loop
// (StepKernels::recurrent_gemms): the handle, its stream and math mode, the types and every
// pointer are resolved before the first step, and a step's two directions run as one
// strided-batched GEMM where W_hh's two matrices lie a fixed positive distance apart (the
// state and workspace always do).
#pragma once

#include <memory>

#include "../../gru_layer.h"

namespace gru_cuda {

// nullptr where the direct GEMMs are switched off, or (counted as declined) the loop's
// dtype, layout or sizes are not theirs: the driver then runs its per-step GEMMs.
std::unique_ptr<RecurrentGemms> recurrent_gemms_cuda(const RecurrentGemmArgs& args);

}  // namespace gru_cuda
