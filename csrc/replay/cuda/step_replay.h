// The CUDA per-step loop replayed from captured graphs (step_replay.cpp), a CUDA device's
// replay_steps in its StepKernels.
#pragma once

#include "../../gru_layer.h"

namespace gru_cuda {

// True when it ran the loop from a graph (captured now or before); false when the
// driver must run it eagerly: replay off, an empty loop, the caller capturing, precision
// settings it cannot read, a shape seen for the first time, a layer past its capture
// limit, or a shape whose capture failed.
bool replay_steps_cuda(const StepLoop& loop);

}  // namespace gru_cuda
