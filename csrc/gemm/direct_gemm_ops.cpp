// The direct GEMMs' switch and counts as ops (host code, in CPU-only builds too).
#include <torch/library.h>

#include <vector>

#include "../mode_switch.h"
#include "direct_gemm_switch.h"

namespace gru_cuda {

std::atomic<bool>& direct_gemm_enabled() {
  static std::atomic<bool> enabled(flag_from_env("GRU_CUDA_DIRECT_GEMM", false));
  return enabled;
}

DirectGemmCounts& direct_gemm_counts() {
  static DirectGemmCounts counts;
  return counts;
}

namespace {

bool set_direct_gemm_op(bool enabled) { return direct_gemm_enabled().exchange(enabled); }

// [GEMMs run directly, of those both directions at once, GEMMs declined] since the
// process started.
std::vector<int64_t> direct_gemm_counts_op() {
  const DirectGemmCounts& c = direct_gemm_counts();
  return {c.gemms.load(), c.batched.load(), c.declined.load()};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gru_cuda, m) {
  m.def("set_direct_gemm(bool enabled) -> bool", &set_direct_gemm_op);
  m.def("direct_gemm_counts() -> int[]", &direct_gemm_counts_op);
}

}  // namespace gru_cuda
