#include "persistent_switch.h"

#include <cstdlib>
#include <string>

namespace gru_cuda {

ModeSwitch<PersistentMode>& persistent_switch() {
  static ModeSwitch<PersistentMode> mode("GRU_CUDA_PERSISTENT", "require", "persistent");
  return mode;
}

std::atomic<bool>& persistent_local_allowed() {
  static std::atomic<bool> allowed(flag_from_env("GRU_CUDA_PERSISTENT_LOCAL", true));
  return allowed;
}

std::atomic<int64_t>& persistent_warp_rows() {
  static std::atomic<int64_t> rows([] {
    const char* value = std::getenv("GRU_CUDA_PERSISTENT_ROWS");
    if (value == nullptr) return int64_t{1};
    const std::string text(value);
    TORCH_CHECK(text == "1" || text == "2" || text == "4",
                "gru_cuda: GRU_CUDA_PERSISTENT_ROWS must be 1, 2 or 4, got '", text, "'");
    return static_cast<int64_t>(std::stoi(text));
  }());
  return rows;
}

std::atomic<bool>& persistent_mma_allowed() {
  static std::atomic<bool> allowed(flag_from_env("GRU_CUDA_PERSISTENT_MMA", false));
  return allowed;
}

std::atomic<bool>& persistent_local_registers() {
  static std::atomic<bool> allowed(flag_from_env("GRU_CUDA_PERSISTENT_REGISTERS", false));
  return allowed;
}

std::atomic<bool>& persistent_cluster_allowed() {
  static std::atomic<bool> allowed(flag_from_env("GRU_CUDA_PERSISTENT_CLUSTER", false));
  return allowed;
}

PersistentCounts& persistent_counts() {
  static PersistentCounts counts;
  return counts;
}

}  // namespace gru_cuda
