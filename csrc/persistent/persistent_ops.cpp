// The persistent path's ops: its launch plan for given sizes and device figures (so that
// CPU tests check it), the switch, and how often the kernels ran. Host code only: they
// exist in CPU-only builds too.
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <vector>

#include "persistent_defaults.h"
#include "persistent_plan.h"
#include "persistent_switch.h"

namespace gru_cuda {
namespace {

// The plan's fields in the order of kPersistentPlanFields.
std::vector<int64_t> persistent_plan_op(int64_t H, int64_t N, int64_t D, bool is_double,
                                        int64_t sm_count, int64_t smem_per_block,
                                        bool allow_local, int64_t rows_per_warp,
                                        int64_t mma_bytes, bool local_registers,
                                        int64_t clusters_of_8, int64_t clusters_of_16,
                                        int64_t element_bytes) {
  const PersistentPlan p =
      plan_persistent(H, N, D, is_double, {sm_count, smem_per_block, {clusters_of_8, clusters_of_16}},
                      allow_local, rows_per_warp, mma_bytes, local_registers, element_bytes);
  return {static_cast<int64_t>(p.refusal), static_cast<int64_t>(p.form), p.rows_per_block,
          p.blocks_per_direction, p.units_per_block, p.grid, p.threads, p.smem_forward,
          p.smem_backward, p.rows_per_warp, p.mma, p.register_chunks, p.cluster_size};
}

// The auto mode's choice for a layer: none, or its form, rows a warp, tensor cores,
// registers and smallest cluster.
std::vector<int64_t> persistent_default_op(c10::ScalarType dtype, int64_t H, int64_t N,
                                           int64_t D) {
  const PersistentDefault* row = persistent_default(c10::toString(dtype), H, N, D);
  if (row == nullptr) return {};
  return {static_cast<int64_t>(row->form), row->warp_rows, row->mma, row->registers,
          row->cluster_size};
}

int64_t set_persistent_mode_op(int64_t mode) { return persistent_switch().exchange(mode); }

bool set_persistent_local_op(bool allowed) { return persistent_local_allowed().exchange(allowed); }

bool set_persistent_mma_op(bool allowed) { return persistent_mma_allowed().exchange(allowed); }

bool set_persistent_registers_op(bool allowed) {
  return persistent_local_registers().exchange(allowed);
}

bool set_persistent_cluster_op(bool allowed) {
  return persistent_cluster_allowed().exchange(allowed);
}

int64_t set_persistent_cluster_size_op(int64_t size) {
  TORCH_CHECK(size == 8 || size == 16,
              "gru_cuda: the cluster form's smallest cluster must be 8 or 16, got ", size);
  return persistent_cluster_size().exchange(size);
}

int64_t set_persistent_warp_rows_op(int64_t rows) {
  TORCH_CHECK(rows == 1 || rows == 2 || rows == 4,
              "gru_cuda: the persistent forward's rows a warp must be 1, 2 or 4, got ", rows);
  return persistent_warp_rows().exchange(rows);
}

// Since the process started, in the order of kPersistentCountNames.
std::vector<int64_t> persistent_counts_op() {
  const PersistentCounts& c = persistent_counts();
  return {c.forward.load(),          c.backward.load(),         c.refused.load(),
          c.fallback.load(),         c.local_forward.load(),    c.local_backward.load(),
          c.grid_forward_rows[0].load(), c.grid_forward_rows[1].load(),
          c.grid_forward_rows[2].load(), c.grid_forward_mma.load(),
          c.grid_backward_mma.load(),   c.local_forward_registers.load(),
          c.local_backward_registers.load(), c.cluster_forward.load(),
          c.cluster_backward.load(), c.cluster_forward_mma.load(),
          c.cluster_backward_mma.load(), c.cluster_backward_lane_units_2.load()};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gru_cuda, m) {
  m.def("persistent_plan(int H, int N, int D, bool is_double, int sm_count, "
        "int smem_per_block, bool allow_local=True, int rows_per_warp=1, "
        "int mma_bytes=0, bool local_registers=False, int clusters_of_8=0, "
        "int clusters_of_16=0, int element_bytes=4) -> int[]",
        &persistent_plan_op);
  m.def("persistent_default(ScalarType dtype, int H, int N, int D) -> int[]",
        &persistent_default_op);
  m.def("set_persistent_mode(int mode) -> int", &set_persistent_mode_op);
  m.def("set_persistent_local(bool allowed) -> bool", &set_persistent_local_op);
  m.def("set_persistent_warp_rows(int rows) -> int", &set_persistent_warp_rows_op);
  m.def("set_persistent_mma(bool allowed) -> bool", &set_persistent_mma_op);
  m.def("set_persistent_registers(bool allowed) -> bool", &set_persistent_registers_op);
  m.def("set_persistent_cluster(bool allowed) -> bool", &set_persistent_cluster_op);
  m.def("set_persistent_cluster_size(int size) -> int", &set_persistent_cluster_size_op);
  m.def("persistent_counts() -> int[]", &persistent_counts_op);
}

}  // namespace gru_cuda
