// The part of CUDA's cooperative groups the persistent kernels use, for the emulation in
// cuda_emulation.h: the whole grid's barrier.
#pragma once

#include "cuda_emulation.h"

namespace cooperative_groups {

struct grid_group {
  void sync() const { emulated_grid->grid->arrive_and_wait(); }
};

inline grid_group this_grid() { return {}; }

}  // namespace cooperative_groups
