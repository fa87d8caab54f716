// Whether the persistent CUDA kernels may run, and how often they did. Opt-in until a GPU
// run has checked them: off unless GRU_CUDA_PERSISTENT=1 or gru_cuda.persistent().
#pragma once

#include <atomic>
#include <cstdint>

namespace gru_cuda {

enum class PersistentMode : int64_t { kOff = 0, kOn = 1 };

PersistentMode persistent_mode();
PersistentMode set_persistent_mode(PersistentMode mode);  // returns the previous mode

// Layers run by the persistent kernels, and layers that asked for them but ran on the
// per-step path (not eligible, or the cooperative launch was refused).
struct PersistentCounts {
  std::atomic<int64_t> forward{0}, backward{0}, fallback{0};
};
PersistentCounts& persistent_counts();

}  // namespace gru_cuda
