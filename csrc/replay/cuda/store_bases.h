// Graph replay's one kernel (store_bases.cu): the call's addresses, stored where the
// replayed steps read them.
#pragma once

#include "../../gru_step.h"

namespace gru_cuda {

// Stores value at destination (device memory), on the current stream.
void store_step_bases_cuda(const StepBases& value, void* destination);

}  // namespace gru_cuda
