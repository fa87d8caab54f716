// Where the persistent kernels run by default (the switch's auto mode), and in which form
// and variant: the shapes where a GPU run measured them correct and faster than the
// per-step path, forward and forward+backward, in the same process. Each row names the
// results folder (benchmarks/results/) that measured it. Empty until a GPU run has
// checked the kernels: by default every layer runs per step.
#pragma once

#include "../measured_table.h"
#include "persistent_plan.h"

namespace gru_cuda {

struct PersistentDefault {
  ShapeRange shapes;
  PersistentForm form;
  int64_t warp_rows;     // the grid and cluster forms' forward: 1, 2 or 4 batch rows a warp
  bool mma;              // grid, cluster: on tensor cores (float32: TF32 where cuDNN's allows)
  bool registers;        // the local form with W_hh in registers
  int64_t cluster_size;  // the cluster form's smallest cluster: 8 or 16
  std::string_view run;

  constexpr bool well_formed() const {
    return shapes.dtype != "Double" && (warp_rows == 1 || warp_rows == 2 || warp_rows == 4) &&
           (cluster_size == 8 || cluster_size == 16) &&
           (!mma || form != PersistentForm::kLocal) &&
           (!registers || form == PersistentForm::kLocal);
  }
};

inline constexpr std::array<PersistentDefault, 0> kPersistentDefaults{};
static_assert(rows_well_formed(kPersistentDefaults));

inline const PersistentDefault* persistent_default(std::string_view dtype, int64_t H,
                                                   int64_t N, int64_t D) {
  return measured_row(kPersistentDefaults, dtype, H, N, D);
}

}  // namespace gru_cuda
