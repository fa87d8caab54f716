#include "persistent_switch.h"

#include <cstdlib>
#include <cstring>

namespace gru_cuda {
namespace {

std::atomic<int64_t>& mode_slot() {
  static std::atomic<int64_t> mode{
      static_cast<int64_t>(persistent_mode_from_env(std::getenv("GRU_CUDA_PERSISTENT")))};
  return mode;
}

}  // namespace

PersistentMode persistent_mode_from_env(const char* value) {
  if (value == nullptr) return PersistentMode::kOff;
  if (std::strcmp(value, "1") == 0 || std::strcmp(value, "on") == 0) return PersistentMode::kOn;
  if (std::strcmp(value, "require") == 0) return PersistentMode::kRequire;
  return PersistentMode::kOff;
}

PersistentMode persistent_mode() { return static_cast<PersistentMode>(mode_slot().load()); }

PersistentMode set_persistent_mode(PersistentMode mode) {
  return static_cast<PersistentMode>(mode_slot().exchange(static_cast<int64_t>(mode)));
}

PersistentCounts& persistent_counts() {
  static PersistentCounts counts;
  return counts;
}

}  // namespace gru_cuda
