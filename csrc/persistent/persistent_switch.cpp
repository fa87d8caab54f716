#include "persistent_switch.h"

#include <cstdlib>
#include <cstring>

namespace gru_cuda {
namespace {

std::atomic<int64_t>& mode_slot() {
  static std::atomic<int64_t> mode{[] {
    const char* env = std::getenv("GRU_CUDA_PERSISTENT");
    const bool on = env != nullptr && (std::strcmp(env, "1") == 0 || std::strcmp(env, "on") == 0);
    return static_cast<int64_t>(on ? PersistentMode::kOn : PersistentMode::kOff);
  }()};
  return mode;
}

}  // namespace

PersistentMode persistent_mode() { return static_cast<PersistentMode>(mode_slot().load()); }

PersistentMode set_persistent_mode(PersistentMode mode) {
  return static_cast<PersistentMode>(mode_slot().exchange(static_cast<int64_t>(mode)));
}

PersistentCounts& persistent_counts() {
  static PersistentCounts counts;
  return counts;
}

}  // namespace gru_cuda
