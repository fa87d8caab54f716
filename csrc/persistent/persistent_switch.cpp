#include "persistent_switch.h"

namespace gru_cuda {

ModeSwitch<PersistentMode>& persistent_switch() {
  static ModeSwitch<PersistentMode> mode("GRU_CUDA_PERSISTENT", "require", "persistent");
  return mode;
}

PersistentCounts& persistent_counts() {
  static PersistentCounts counts;
  return counts;
}

}  // namespace gru_cuda
