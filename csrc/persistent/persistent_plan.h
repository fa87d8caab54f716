// The launch plan of the persistent layer kernels (csrc/cuda/gru_persistent.cu): which
// block owns which hidden units, shared memory, grid size, and whether a layer is
// eligible at all. Plain host arithmetic, no CUDA, so CPU builds and tests check it.
#pragma once

#include <cstdint>

namespace gru_cuda {

constexpr int64_t kPersistentThreads = 256;
constexpr int64_t kPersistentMaxRows = 128;     // N: rows staged per step in shared memory
constexpr int64_t kPersistentMaxHidden = 1024;  // H: a lane holds H/32 of a row's state
constexpr int64_t kPersistentMaxUnits = 16;     // units per block: backward accumulators

// Why a layer is not eligible (0: it is).
enum class PersistentRefusal : int64_t {
  kNone = 0,
  kDtype,           // float64: stays on the per-step path
  kTooManyRows,     // N > kPersistentMaxRows
  kHiddenTooLarge,  // H > kPersistentMaxHidden
  kNoSharedMemory,  // W_hh's slices do not fit the blocks' shared memory
  kEmpty,           // no rows, no units, or fewer SMs than directions
};
// Their names in that order, exported to Python (gru_cuda.persistent_kernels).
constexpr const char* kPersistentRefusalNames =
    "none,dtype,too_many_rows,hidden_too_large,no_shared_memory,empty";

struct DeviceLimits {
  int64_t sm_count;
  int64_t smem_per_block;  // the opt-in maximum of dynamic shared memory per block, bytes
};

struct PersistentPlan {
  PersistentRefusal refusal = PersistentRefusal::kNone;
  int64_t blocks_per_direction = 0;
  int64_t units_per_block = 0;  // k: the last block of a direction may own fewer
  int64_t grid = 0;             // blocks_per_direction * D, one block per SM
  int64_t threads = kPersistentThreads;
  int64_t smem_forward = 0;     // W_hh rows (3k x H) and the step's gh (N x 3k), floats
  int64_t smem_backward = 0;    // W_hh columns (k x 3H), floats
  bool eligible() const { return refusal == PersistentRefusal::kNone; }
};
// The fields in the order the plan op returns them, exported to Python.
constexpr const char* kPersistentPlanFields =
    "refusal,blocks_per_direction,units_per_block,grid,threads,smem_forward,smem_backward";

// One block per SM, all blocks co-resident (a cooperative launch checks this again);
// W_hh is kept in float in shared memory whatever the layer's dtype.
PersistentPlan plan_persistent(int64_t H, int64_t N, int64_t D, bool is_double,
                               const DeviceLimits& limits);

}  // namespace gru_cuda
