// A process-wide switch of three modes (0 off, 1 on, 2 a named third) that an environment
// variable sets at first use and an op changes later: the persistent kernels' and graph
// replay's. And the on/off settings' reading of their variables.
#pragma once

#include <c10/util/Exception.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace gru_cuda {

// An on/off setting read from an environment variable: "0" or "1", `unset` when it is not
// set; any other value is an error.
inline bool flag_from_env(const char* variable, bool unset) {
  const char* value = std::getenv(variable);
  if (value == nullptr) return unset;
  TORCH_CHECK(std::strcmp(value, "0") == 0 || std::strcmp(value, "1") == 0, "gru_cuda: ",
              variable, " must be 0 or 1, got '", value, "'");
  return value[0] == '1';
}

template <typename Mode>
class ModeSwitch {
 public:
  // The variable's value "1" or "on" is mode 1, `third` mode 2, anything else mode 0.
  ModeSwitch(const char* variable, const char* third, const char* what)
      : mode_(from_env(variable, third)), third_(third), what_(what) {}

  Mode get() const { return static_cast<Mode>(mode_.load()); }

  // The op's setter: an integer mode in, the previous one out.
  int64_t exchange(int64_t mode) {
    TORCH_CHECK(mode >= 0 && mode <= 2, "gru_cuda: ", what_,
                " mode must be 0 (off), 1 (on) or 2 (", third_, "), got ", mode);
    return mode_.exchange(mode);
  }

 private:
  static int64_t from_env(const char* variable, const char* third) {
    const char* value = std::getenv(variable);
    if (value == nullptr) return 0;
    if (std::strcmp(value, "1") == 0 || std::strcmp(value, "on") == 0) return 1;
    return std::strcmp(value, third) == 0 ? 2 : 0;
  }

  std::atomic<int64_t> mode_;
  const char* third_;
  const char* what_;
};

}  // namespace gru_cuda
