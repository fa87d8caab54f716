#include "persistent_switch.h"

#include <c10/util/Exception.h>

#include <cstdlib>
#include <string>

namespace gru_cuda {

ModeSwitch<PersistentMode>& persistent_switch() {
  static ModeSwitch<PersistentMode> mode("GRU_CUDA_PERSISTENT", "require", "persistent");
  return mode;
}

std::atomic<bool>& persistent_local_allowed() {
  static std::atomic<bool> allowed([] {
    const char* value = std::getenv("GRU_CUDA_PERSISTENT_LOCAL");
    const std::string text = value != nullptr ? value : "1";
    TORCH_CHECK(text == "0" || text == "1",
                "gru_cuda: GRU_CUDA_PERSISTENT_LOCAL must be 0 or 1, got '", text, "'");
    return text == "1";
  }());
  return allowed;
}

PersistentCounts& persistent_counts() {
  static PersistentCounts counts;
  return counts;
}

}  // namespace gru_cuda
