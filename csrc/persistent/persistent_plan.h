// The launch plan of the persistent layer kernels (csrc/persistent/cuda): which
// block owns which hidden units, shared memory, grid size, and whether a layer is
// eligible at all. Plain host arithmetic, no CUDA, so CPU builds and tests check it.
#pragma once

#include <cstdint>

namespace gru_cuda {

constexpr int64_t kPersistentThreads = 256;
constexpr int64_t kPersistentMaxRows = 128;     // N: rows staged per step in shared memory
constexpr int64_t kPersistentMaxHidden = 1024;  // H: a lane holds H/32 of a row's state
constexpr int64_t kPersistentMaxUnits = 16;     // units per block: backward accumulators
constexpr int64_t kLocalMaxThreads = 512;       // local form: a thread per gate row (3H)
constexpr int64_t kLocalMaxRows = 8;            // local form: batch rows a block takes
constexpr int64_t kLocalMaxWaves = 4;           // local form: blocks per SM, one at a time

#if defined(__CUDACC__)
#define GRU_PLAN_HOST_DEVICE __host__ __device__
#else
#define GRU_PLAN_HOST_DEVICE
#endif

// Why a layer is not eligible (0: it is).
enum class PersistentRefusal : int64_t {
  kNone = 0,
  kDtype,           // float64: stays on the per-step path
  kTooManyRows,     // N > kPersistentMaxRows (grid form), or beyond the local form's waves
  kHiddenTooLarge,  // H > kPersistentMaxHidden
  kNoSharedMemory,  // W_hh's slices do not fit the blocks' shared memory
  kEmpty,           // no rows, no units, or fewer SMs than directions
};
// Their names in that order, exported to Python (gru_cuda.persistent_kernels).
constexpr const char* kPersistentRefusalNames =
    "none,dtype,too_many_rows,hidden_too_large,no_shared_memory,empty";

// grid: each block owns some hidden units of every batch row, blocks exchange the state
// through L2 with a grid barrier per step (cooperative launch). local: each block holds
// all of W_hh and runs kRows batch rows alone, no barrier between blocks (small H).
// cluster: a thread-block cluster (sm_90 on) runs some batch rows alone, its blocks
// owning hidden units as in the grid form, exchanging the state through each other's
// shared memory with a cluster barrier per step.
enum class PersistentForm : int64_t { kGrid = 0, kLocal = 1, kCluster = 2 };
constexpr const char* kPersistentFormNames = "grid,local,cluster";

// The grid and cluster forms' forward on tensor cores (H % 16 == 0; float16 and
// bfloat16, or float32 as TF32): W_hh's 3k rows padded to 16-row tiles, each row
// mma_row(H, bytes) values of the layer's type (the padding puts a tile's rows on
// different banks), in float slots, a multiple of 4 (gh follows, aligned).
GRU_PLAN_HOST_DEVICE inline int64_t mma_row(int64_t H, int64_t bytes) {
  return H + (bytes == 2 ? 8 : 4);
}
// A block's 3k gate rows padded to whole 16-row tiles (the cluster backward's K too).
GRU_PLAN_HOST_DEVICE inline int64_t mma_gate_rows(int64_t k) { return (3 * k + 15) / 16 * 16; }
// Float slots for `values` of `bytes` each, rounded up to a multiple of 4 (what follows
// stays 16-byte aligned).
GRU_PLAN_HOST_DEVICE inline int64_t aligned_float_slots(int64_t values, int64_t bytes) {
  return (values * bytes / 4 + 3) / 4 * 4;
}
GRU_PLAN_HOST_DEVICE inline int64_t mma_weight_floats(int64_t k, int64_t H, int64_t bytes) {
  return aligned_float_slots(mma_gate_rows(k) * mma_row(H, bytes), bytes);
}
// The backward's: the k units' columns of W_hh as one tile of 16 rows of mma_row(3H).
GRU_PLAN_HOST_DEVICE inline int64_t mma_backward_weight_floats(int64_t H, int64_t bytes) {
  return aligned_float_slots(16 * mma_row(3 * H, bytes), bytes);
}

// The local form's shared memory in float slots, W_hh first (a half type's value uses
// half a slot). Forward: W_hh^T (H rows of w_stride: 3H made odd, so that a warp writing
// a column hits 32 banks), gh (R, 3H), the step's gx (R, 3H), the state (R, H), b_ih and
// b_hh (2, 3H). Backward: W_hh's three gate blocks (H, H) each, w_block apart (padded so
// that a warp spanning two blocks still hits 32 banks), dgh (R, 3H), dh (R, H), the
// three gate blocks' products dgh W_hh (3, R, H).
struct LocalForwardSlots {
  int64_t w_stride, gh, gx, h, bias, total;
};
GRU_PLAN_HOST_DEVICE inline LocalForwardSlots local_forward_slots(int64_t H, int64_t R) {
  const int64_t w_stride = (3 * H) | 1;
  const int64_t gh = H * w_stride, gx = gh + R * 3 * H, h = gx + R * 3 * H, bias = h + R * H;
  return {w_stride, gh, gx, h, bias, bias + 2 * 3 * H};
}
struct LocalBackwardSlots {
  int64_t w_block, dgh, dh, partial, total;
};
GRU_PLAN_HOST_DEVICE inline LocalBackwardSlots local_backward_slots(int64_t H, int64_t R) {
  // Thread g H + u reads g w_block + c H + u: w_block = H (mod 32) keeps that bank t + c H.
  const int64_t w_block = H * H + ((H - H * H) % 32 + 32) % 32;
  const int64_t dgh = 3 * w_block, dh = dgh + R * 3 * H, partial = dh + R * H;
  return {w_block, dgh, dh, partial, partial + 3 * R * H};
}

// The local form's W_hh in a thread's registers (the forward's gate row, the backward's
// gate-block column), in chunks of 4 values, or 0 to keep W_hh in shared memory: 16
// chunks up to H=64 (192 threads), 32 up to H=128 (384 threads) with at most
// kLocalMaxRowsAt32Chunks rows a block, within the 168 registers a thread of 384 may have.
constexpr int64_t kLocalMaxRowsAt32Chunks = 2;
GRU_PLAN_HOST_DEVICE inline int64_t local_register_chunks(int64_t H, int64_t R) {
  if (H <= 64) return 16;
  return H <= 128 && R <= kLocalMaxRowsAt32Chunks ? 32 : 0;
}

// The cluster form's shared memory in float slots, W_hh's slice first: the block's 3k
// gate rows, in float or, with mma, in the layer's type. Forward: the slice as the grid
// form's forward has it (with mma as mma_weight_floats lays it out), gh (R, 3k), then the
// state of the cluster's R rows in the layer's type, `bytes` a value, double-buffered by
// step (2, R, cluster_state_row): the blocks write their units into every block's copy.
// Backward: the slice as the forward's, or with mma transposed (H rows of the 3k gate
// rows' values, padded to mma_gate_rows, mma_row of that apart), the gradient of gh for
// the block's units in the layer's type (R rows of 3k, or with mma as the slice's rows),
// then the partial dh the C blocks' gate rows give for this block's units,
// double-buffered by step (2, C, R, k). With mma, the rows a tensor-core tile reads from
// shared memory are padded (mma_row) so that its 8 rows fall on different banks.
GRU_PLAN_HOST_DEVICE inline int64_t cluster_state_row(int64_t H, int64_t bytes, bool mma) {
  return mma ? mma_row(H, bytes) : H;
}
struct ClusterSlots {
  int64_t gh, h, forward_total, dgh, partial, backward_total;
};
GRU_PLAN_HOST_DEVICE inline ClusterSlots cluster_slots(int64_t H, int64_t k, int64_t R,
                                                       int64_t C, int64_t bytes = 4,
                                                       bool mma = false) {
  const int64_t w = 3 * k * H, w_forward = mma ? mma_weight_floats(k, H, bytes) : w;
  const int64_t mma_k_row = mma_row(mma_gate_rows(k), bytes);
  const int64_t w_backward = mma ? aligned_float_slots(H * mma_k_row, bytes) : w;
  const int64_t h = w_forward + R * 3 * k;
  const int64_t state = (2 * R * cluster_state_row(H, bytes, mma) * bytes + 3) / 4;
  const int64_t partial = w_backward + (R * (mma ? mma_k_row : 3 * k) * bytes + 3) / 4;
  return {w_forward, h, h + state, w_backward, partial, partial + 2 * C * R * k};
}
constexpr int64_t kClusterSizes[2] = {8, 16};  // portable, then Hopper's non-portable most

struct DeviceLimits {
  int64_t sm_count;
  int64_t smem_per_block;  // the opt-in maximum of dynamic shared memory per block, bytes
  // Clusters of kClusterSizes blocks (one an SM) the device runs at once; 0: none (no
  // clusters before sm_90, or the cluster form is off).
  int64_t clusters[2] = {0, 0};
};

struct PersistentPlan {
  PersistentRefusal refusal = PersistentRefusal::kNone;
  PersistentForm form = PersistentForm::kGrid;
  int64_t rows_per_block = 0;   // local: batch rows a block takes (R); grid: N
  int64_t blocks_per_direction = 0;
  int64_t units_per_block = 0;  // k: the last block of a direction may own fewer; local: H
  int64_t grid = 0;             // blocks_per_direction * D; grid form: one block per SM
  int64_t threads = kPersistentThreads;
  int64_t smem_forward = 0;     // grid: W_hh rows (3k x H), the step's gh (N x 3k), floats
  int64_t smem_backward = 0;    // grid: W_hh columns (k x 3H), floats
  int64_t rows_per_warp = 0;    // grid: batch rows a warp's forward product takes (1, 2, 4)
  int64_t mma = 0;              // grid, cluster: 1 when the products run on tensor cores
  int64_t register_chunks = 0;  // local: W_hh's part a thread takes in registers (0: shared)
  int64_t cluster_size = 0;     // cluster: blocks a cluster (rows_per_block: rows it takes)
  bool eligible() const { return refusal == PersistentRefusal::kNone; }
};
// The fields in the order the plan op returns them, exported to Python.
constexpr const char* kPersistentPlanFields =
    "refusal,form,rows_per_block,blocks_per_direction,units_per_block,grid,threads,"
    "smem_forward,smem_backward,rows_per_warp,mma,register_chunks,cluster_size";

// The grid form's forward: a lane holds forward_chunks(H) values of a row's state, and a
// warp takes as many of the wanted 1, 2 or 4 rows as 32 values a lane allow.
inline int64_t forward_chunks(int64_t H) { return H <= 256 ? 8 : H <= 512 ? 16 : 32; }
inline int64_t forward_warp_rows(int64_t H, int64_t wanted) {
  const int64_t most = 32 / forward_chunks(H);
  return wanted < most ? wanted : most;
}

// The cluster form's FFMA backward: units a lane takes in its product (1 or 2, 32 apart).
// Two halve the W_hh loads an FMA but halve the items too, so only where the block's
// 4-row items with 2 units a lane still give every warp one.
inline int64_t cluster_backward_lane_units(int64_t H, int64_t R) {
  return (R / 4) * ((H + 63) / 64) >= kPersistentThreads / 32 ? 2 : 1;
}

// The local form where allowed and W_hh fits one block, with the fewest rows a block (up
// to kLocalMaxRows) that keep the grid within one block per SM; else the cluster form
// where the device has clusters and its slices fit, the rows spread over the clusters it
// runs at once; else the grid form: one block per SM, all co-resident (a cooperative
// launch checks this again). W_hh is kept in float in shared memory whatever the
// layer's dtype, but for products on tensor cores (in the layer's type).
// warp_rows: the rows a warp's forward product should take (grid and cluster forms: 1, 2
// or 4); mma_bytes: the element size of a layer whose products may use tensor cores (2:
// float16 or bfloat16; 4: float32 where TF32 is allowed; then element_bytes too), 0 where
// it may not (the grid and cluster forms' passes). local_registers:
// whether the local form may keep W_hh in registers. element_bytes: the layer's element
// size (the cluster form's state copies are in its type).
PersistentPlan plan_persistent(int64_t H, int64_t N, int64_t D, bool is_double,
                               const DeviceLimits& limits, bool allow_local,
                               int64_t warp_rows = 1, int64_t mma_bytes = 0,
                               bool local_registers = false, int64_t element_bytes = 4);

}  // namespace gru_cuda
