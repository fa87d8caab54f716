// The part of CUDA's cooperative groups the persistent kernels use, for the emulation in
// cuda_emulation.h: the whole grid's barrier; a cluster's barrier and its blocks' shared
// memory.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "cuda_emulation.h"

namespace cooperative_groups {

struct grid_group {
  void sync() const { emulated_grid->grid->arrive_and_wait(); }
};

inline grid_group this_grid() { return {}; }

struct cluster_group {
  static unsigned index() { return blockIdx.x / emulated_grid->cluster_size; }
  void sync() const { emulated_grid->clusters[index()]->arrive_and_wait(); }
  // addr, in this block's shared memory, at the same offset in block `rank` of the cluster.
  // On a GPU a peer's shared memory may be touched only once it runs: here, only once the
  // cluster has passed a barrier, which a kernel must wait at before its first access.
  template <typename T>
  T* map_shared_rank(T* addr, int rank) const {
    if (emulated_grid->cluster_phases[index()].load() == 0) {
      std::fprintf(stderr, "a peer's shared memory mapped before the cluster's first barrier\n");
      std::abort();
    }
    const auto base = [](unsigned block) {
      return reinterpret_cast<char*>(emulated_grid->shared[block].data());
    };
    const unsigned peer = index() * emulated_grid->cluster_size + rank;
    return reinterpret_cast<T*>(base(peer) + (reinterpret_cast<char*>(addr) - base(blockIdx.x)));
  }
};

inline cluster_group this_cluster() { return {}; }

}  // namespace cooperative_groups
