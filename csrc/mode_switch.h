// A process-wide switch of four modes (0 off, 1 on, 2 a named third, 3 auto: on where a
// table of measured wins says) that an environment variable sets at first use and an op
// changes later: the persistent kernels' and graph replay's. And the on/off settings'
// reading of their variables.
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
  // The variable's value "0"/"off" is mode 0, "1"/"on" mode 1, `third` mode 2, "auto" (or
  // the variable unset or empty) mode 3; any other value is an error.
  ModeSwitch(const char* variable, const char* third, const char* what)
      : mode_(from_env(variable, third)), third_(third), what_(what) {}

  Mode get() const { return static_cast<Mode>(mode_.load()); }

  // The op's setter: an integer mode in, the previous one out.
  int64_t exchange(int64_t mode) {
    TORCH_CHECK(mode >= 0 && mode <= 3, "gru_cuda: ", what_,
                " mode must be 0 (off), 1 (on), 2 (", third_, ") or 3 (auto), got ", mode);
    return mode_.exchange(mode);
  }

 private:
  static int64_t from_env(const char* variable, const char* third) {
    const char* value = std::getenv(variable);
    if (value == nullptr || value[0] == '\0' || std::strcmp(value, "auto") == 0) return 3;
    if (std::strcmp(value, "0") == 0 || std::strcmp(value, "off") == 0) return 0;
    if (std::strcmp(value, "1") == 0 || std::strcmp(value, "on") == 0) return 1;
    TORCH_CHECK(std::strcmp(value, third) == 0, "gru_cuda: ", variable,
                " must be 0, off, 1, on, ", third, " or auto, got '", value, "'");
    return 2;
  }

  std::atomic<int64_t> mode_;
  const char* third_;
  const char* what_;
};

}  // namespace gru_cuda
