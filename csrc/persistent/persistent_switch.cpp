#include "persistent_switch.h"

namespace gru_cuda {

ModeSwitch<PersistentMode>& persistent_switch() {
  static ModeSwitch<PersistentMode> mode("GRU_CUDA_PERSISTENT", "require", "persistent");
  return mode;
}

std::atomic<bool>& persistent_local_allowed() {
  static std::atomic<bool> allowed(flag_from_env("GRU_CUDA_PERSISTENT_LOCAL", true));
  return allowed;
}

PersistentCounts& persistent_counts() {
  static PersistentCounts counts;
  return counts;
}

}  // namespace gru_cuda
