#include "persistent_plan.h"

#include <algorithm>

namespace gru_cuda {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The local form for H, N, D, or false where W_hh and one staged row do not fit a block,
// or the blocks would need more than kLocalMaxWaves waves. Rows a block: the fewest that
// keep the grid to one block per SM, fewer where those do not fit (the blocks then run in
// waves). Any N: batch rows never meet.
bool plan_local(int64_t H, int64_t N, int64_t D, const DeviceLimits& limits,
                bool registers, PersistentPlan& plan) {
  const int64_t threads = ceil_div(3 * H, 32) * 32;
  if (threads > kLocalMaxThreads) return false;
  int64_t R = 1;
  while (R < kLocalMaxRows && ceil_div(N, R) * D > limits.sm_count) R *= 2;
  const int64_t floats = static_cast<int64_t>(sizeof(float));
  int64_t smem_forward = 0, smem_backward = 0;
  for (; R >= 1; R /= 2) {
    smem_forward = local_forward_slots(H, R).total * floats;
    smem_backward = local_backward_slots(H, R).total * floats;
    if (std::max(smem_forward, smem_backward) <= limits.smem_per_block) break;
  }
  // Past a few waves of blocks the per-step path's large GEMMs do better.
  if (R == 0 || ceil_div(N, R) * D > kLocalMaxWaves * limits.sm_count) return false;
  plan.form = PersistentForm::kLocal;
  plan.rows_per_block = R;
  plan.units_per_block = H;
  plan.blocks_per_direction = ceil_div(N, R);
  plan.grid = plan.blocks_per_direction * D;
  plan.threads = threads;
  plan.smem_forward = smem_forward;
  plan.smem_backward = smem_backward;
  plan.register_chunks = registers ? local_register_chunks(H, R) : 0;
  return true;
}

// The cluster form for H, N, D, or false: the smallest cluster whose blocks' slices of
// W_hh and staged rows fit, with the rows spread over as many clusters as run at once
// (a cluster per direction at least). Blocks past H own no units; they keep the barrier.
// Built for H <= 512 (a lane's 8 or 16 chunks of a row's state): beyond it the slices
// leave no room for the staged rows. Both passes on tensor cores where allowed
// (mma_bytes) and their slices fit (in a half type, half the bytes: a cluster of 8 may fit
// where FFMA's needs 16), else on FFMA.
bool plan_cluster(int64_t H, int64_t N, int64_t D, const DeviceLimits& limits,
                  int64_t warp_rows, int64_t element_bytes, int64_t mma_bytes,
                  PersistentPlan& plan) {
  if (forward_chunks(H) > 16) return false;
  for (int i = 0; i < 2; ++i) {
    const int64_t C = kClusterSizes[i], at_once = limits.clusters[i] / D;
    if (at_once < 1) continue;
    const int64_t k = ceil_div(H, C), R = ceil_div(N, at_once);
    const int64_t floats = static_cast<int64_t>(sizeof(float));
    const auto fits = [&](const ClusterSlots& slots) {
      return std::max(slots.forward_total, slots.backward_total) * floats <=
             limits.smem_per_block;
    };
    ClusterSlots slots = cluster_slots(H, k, R, C, element_bytes, /*mma=*/true);
    const bool mma = mma_bytes != 0 && H % 16 == 0 && fits(slots);
    if (!mma) slots = cluster_slots(H, k, R, C, element_bytes);
    if (!fits(slots)) continue;
    plan.form = PersistentForm::kCluster;
    plan.cluster_size = C;
    plan.rows_per_block = R;
    plan.units_per_block = k;
    plan.blocks_per_direction = C * ceil_div(N, R);
    plan.grid = plan.blocks_per_direction * D;
    plan.smem_forward = slots.forward_total * floats;
    plan.smem_backward = slots.backward_total * floats;
    plan.mma = mma ? 1 : 0;
    plan.rows_per_warp = mma ? 0 : forward_warp_rows(H, warp_rows);
    return true;
  }
  return false;
}

}  // namespace

PersistentPlan plan_persistent(int64_t H, int64_t N, int64_t D, bool is_double,
                               const DeviceLimits& limits, bool allow_local,
                               int64_t warp_rows, int64_t mma_bytes, bool local_registers,
                               int64_t element_bytes) {
  PersistentPlan plan;
  if (is_double) {
    plan.refusal = PersistentRefusal::kDtype;
  } else if (H <= 0 || N <= 0 || D <= 0 || limits.sm_count < D) {
    plan.refusal = PersistentRefusal::kEmpty;
  }
  if (!plan.eligible() || (allow_local && plan_local(H, N, D, limits, local_registers, plan)) ||
      plan_cluster(H, N, D, limits, warp_rows, element_bytes, mma_bytes, plan)) {
    return plan;
  }
  if (N > kPersistentMaxRows) {
    plan.refusal = PersistentRefusal::kTooManyRows;
  } else if (H > kPersistentMaxHidden) {
    plan.refusal = PersistentRefusal::kHiddenTooLarge;
  }
  if (!plan.eligible()) return plan;
  plan.rows_per_block = N;
  // As many blocks as the SMs allow: the fewer units a block owns, the less of W_hh and
  // of each step's work it holds. Then as few blocks as that unit count needs.
  const int64_t k = ceil_div(H, limits.sm_count / D);
  plan.units_per_block = k;
  plan.blocks_per_direction = ceil_div(H, k);
  plan.grid = plan.blocks_per_direction * D;
  const int64_t floats = static_cast<int64_t>(sizeof(float));
  const auto forward_bytes = [&](bool mma) {
    return ((mma ? mma_weight_floats(k, H, mma_bytes) : 3 * k * H) + N * 3 * k) * floats;
  };
  const auto backward_bytes = [&](bool mma) {
    return (mma ? mma_backward_weight_floats(H, mma_bytes) : k * 3 * H) * floats;
  };
  // Tensor cores where allowed and their tiles' padding fits, else FFMA.
  plan.mma = mma_bytes != 0 && H % 16 == 0 &&
             std::max(forward_bytes(true), backward_bytes(true)) <= limits.smem_per_block;
  plan.rows_per_warp = plan.mma != 0 ? 0 : forward_warp_rows(H, warp_rows);
  plan.smem_forward = forward_bytes(plan.mma != 0);
  plan.smem_backward = backward_bytes(plan.mma != 0);
  if (k > kPersistentMaxUnits ||
      std::max(plan.smem_forward, plan.smem_backward) > limits.smem_per_block) {
    plan.refusal = PersistentRefusal::kNoSharedMemory;
  }
  return plan;
}

}  // namespace gru_cuda
