#include "persistent_switch.h"

#include <cstdlib>
#include <initializer_list>
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

namespace {

// variable's value, one of `allowed` (as written in the message), else `unset`.
int64_t choice_from_env(const char* variable, std::initializer_list<const char*> allowed,
                        const char* allowed_text, int64_t unset) {
  const char* value = std::getenv(variable);
  if (value == nullptr) return unset;
  const std::string text(value);
  bool known = false;
  for (const char* option : allowed) known = known || text == option;
  TORCH_CHECK(known, "gru_cuda: ", variable, " must be ", allowed_text, ", got '", text, "'");
  return static_cast<int64_t>(std::stoi(text));
}

}  // namespace

std::atomic<int64_t>& persistent_warp_rows() {
  static std::atomic<int64_t> rows(
      choice_from_env("GRU_CUDA_PERSISTENT_ROWS", {"1", "2", "4"}, "1, 2 or 4", 1));
  return rows;
}

std::atomic<int64_t>& persistent_cluster_size() {
  static std::atomic<int64_t> size(
      choice_from_env("GRU_CUDA_PERSISTENT_CLUSTER_SIZE", {"8", "16"}, "8 or 16", 8));
  return size;
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
