// The part of CUDA's cooperative groups the persistent kernels use, for the emulation in
// cuda_emulation.h: the whole grid's barrier; a cluster's barrier and its blocks' shared
// memory.
#pragma once

#include "cuda_emulation.h"

namespace cooperative_groups {

struct grid_group {
  void sync() const { emulated_grid->grid->arrive_and_wait(); }
};

inline grid_group this_grid() { return {}; }

struct cluster_group {
  void sync() const { emulated_grid->clusters[blockIdx.x / emulated_grid->cluster_size]->arrive_and_wait(); }
  // addr, in this block's shared memory, at the same offset in block `rank` of the cluster.
  template <typename T>
  T* map_shared_rank(T* addr, int rank) const {
    const auto base = [](unsigned block) {
      return reinterpret_cast<char*>(emulated_grid->shared[block].data());
    };
    const unsigned first = blockIdx.x / emulated_grid->cluster_size * emulated_grid->cluster_size;
    return reinterpret_cast<T*>(base(first + rank) + (reinterpret_cast<char*>(addr) - base(blockIdx.x)));
  }
};

inline cluster_group this_cluster() { return {}; }

}  // namespace cooperative_groups
