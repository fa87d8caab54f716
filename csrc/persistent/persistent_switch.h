// Whether the persistent CUDA kernels may run, and how often they did. By default (auto)
// only where a GPU run measured them faster (persistent_defaults.h); GRU_CUDA_PERSISTENT=1
// (or =require) or gru_cuda.persistent() wherever the plan takes a layer, =0 nowhere.
#pragma once

#include <atomic>
#include <cstdint>

#include "../mode_switch.h"

namespace gru_cuda {

// kRequire: as kOn, but a layer the plan calls eligible that cannot run persistent is an
// error instead of a fallback (for tests and benchmarks, which must know what they ran).
// kAuto: as kOn for the shapes the table of measured wins holds, with the variant it
// names; off elsewhere.
enum class PersistentMode : int64_t { kOff = 0, kOn = 1, kRequire = 2, kAuto = 3 };

// Set at first use by GRU_CUDA_PERSISTENT: "0"/"off", "1"/"on", "require", "auto" (unset).
ModeSwitch<PersistentMode>& persistent_switch();

// Whether the plan may choose the local form: GRU_CUDA_PERSISTENT_LOCAL=0 at start, or
// the set_persistent_local op, turns it off (so that the grid form can be tested and
// timed at small H too).
std::atomic<bool>& persistent_local_allowed();

// The rows a warp's forward product takes in the grid form, 1 until a GPU run has
// measured the variants: GRU_CUDA_PERSISTENT_ROWS=2 or 4 at start (the benchmark's), or
// the set_persistent_warp_rows op.
std::atomic<int64_t>& persistent_warp_rows();

// Whether the grid and cluster forms' products may run on tensor cores (float16 and
// bfloat16; float32 as TF32 where cuDNN's RNN setting allows TF32): off until a GPU run
// has checked it; GRU_CUDA_PERSISTENT_MMA=1 at start, or the set_persistent_mma op.
std::atomic<bool>& persistent_mma_allowed();

// Whether the local form's passes may keep W_hh in registers: off until a GPU run has
// measured it against shared memory; GRU_CUDA_PERSISTENT_REGISTERS=1 at start, or the
// set_persistent_registers op.
std::atomic<bool>& persistent_local_registers();

// Whether the plan may choose the cluster form (sm_90 on): off until a GPU run has
// checked it; GRU_CUDA_PERSISTENT_CLUSTER=1 at start, or the set_persistent_cluster op.
std::atomic<bool>& persistent_cluster_allowed();

// The smallest cluster the cluster form may take, 8 (a larger one only where a slice of 8
// does not fit) or 16 (half the work a block, a barrier over twice the blocks), 8 until
// a GPU run has measured both: GRU_CUDA_PERSISTENT_CLUSTER_SIZE at start, or the
// set_persistent_cluster_size op.
std::atomic<int64_t>& persistent_cluster_size();

// Layers run by the persistent kernels (local_*: of those, by the local form, and
// local_*_registers of its passes with W_hh in registers; cluster_*: by the cluster form,
// cluster_*_mma of its passes on tensor cores, cluster_backward_lane_units_2 of its FFMA
// backwards with 2 units a lane; the grid form's forwards by the
// rows a warp took); layers the switch offered them that they did not
// take (refused: the plan's reasons, or CUDA graph capture); and layers the plan took
// whose cooperative launch was refused (fallback: they ran per step).
struct PersistentCounts {
  std::atomic<int64_t> forward{0}, backward{0}, refused{0}, fallback{0};
  std::atomic<int64_t> local_forward{0}, local_backward{0};
  std::atomic<int64_t> local_forward_registers{0}, local_backward_registers{0};
  std::atomic<int64_t> grid_forward_rows[3] = {0, 0, 0};  // taking 1, 2, 4 rows a warp
  std::atomic<int64_t> grid_forward_mma{0}, grid_backward_mma{0};  // on tensor cores
  std::atomic<int64_t> cluster_forward{0}, cluster_backward{0};
  std::atomic<int64_t> cluster_forward_mma{0}, cluster_backward_mma{0};
  std::atomic<int64_t> cluster_backward_lane_units_2{0};
};
PersistentCounts& persistent_counts();
// The counts in the order the counts op returns them, exported to Python.
constexpr const char* kPersistentCountNames =
    "forward,backward,refused,fallback,local_forward,local_backward,grid_forward_rows_1,"
    "grid_forward_rows_2,grid_forward_rows_4,grid_forward_mma,grid_backward_mma,"
    "local_forward_registers,local_backward_registers,cluster_forward,cluster_backward,"
    "cluster_forward_mma,cluster_backward_mma,cluster_backward_lane_units_2";

}  // namespace gru_cuda
