// The persistent path's ops: its launch plan for given sizes and device figures (so that
// CPU tests check it), the switch, and how often the kernels ran. Host code only: they
// exist in CPU-only builds too.
#include <torch/library.h>

#include <vector>

#include "persistent_plan.h"
#include "persistent_switch.h"

namespace gru_cuda {
namespace {

// The plan's fields in the order of kPersistentPlanFields.
std::vector<int64_t> persistent_plan_op(int64_t H, int64_t N, int64_t D, bool is_double,
                                        int64_t sm_count, int64_t smem_per_block,
                                        bool allow_local) {
  const PersistentPlan p =
      plan_persistent(H, N, D, is_double, {sm_count, smem_per_block}, allow_local);
  return {static_cast<int64_t>(p.refusal), static_cast<int64_t>(p.form), p.rows_per_block,
          p.blocks_per_direction, p.units_per_block, p.grid, p.threads, p.smem_forward,
          p.smem_backward};
}

int64_t set_persistent_mode_op(int64_t mode) { return persistent_switch().exchange(mode); }

bool set_persistent_local_op(bool allowed) { return persistent_local_allowed().exchange(allowed); }

// [forward runs, backward runs, refused, fallbacks, local forward runs, local backward
// runs] since the process started.
std::vector<int64_t> persistent_counts_op() {
  const PersistentCounts& c = persistent_counts();
  return {c.forward.load(),  c.backward.load(),      c.refused.load(),
          c.fallback.load(), c.local_forward.load(), c.local_backward.load()};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gru_cuda, m) {
  m.def("persistent_plan(int H, int N, int D, bool is_double, int sm_count, "
        "int smem_per_block, bool allow_local=True) -> int[]", &persistent_plan_op);
  m.def("set_persistent_mode(int mode) -> int", &set_persistent_mode_op);
  m.def("set_persistent_local(bool allowed) -> bool", &set_persistent_local_op);
  m.def("persistent_counts() -> int[]", &persistent_counts_op);
}

}  // namespace gru_cuda
