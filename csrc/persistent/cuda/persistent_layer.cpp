// The CUDA layer runner: runs a layer's time loop in the persistent kernels when they are
// switched on and the layer is eligible, else reports that the per-step path must run.
// Only the documented refusals fall back (the plan's reasons, CUDA graph capture, a
// cooperative launch too large for the device); any other CUDA error raises, and in
// require mode so does a refused launch of a layer the plan took.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <map>
#include <mutex>

#include "../../cuda/stream_capture.h"
#include "../../gemm/cuda/cublas_calls.h"
#include "../persistent_defaults.h"
#include "../persistent_plan.h"
#include "../persistent_switch.h"
#include "gru_persistent.h"
#include "persistent_layer.h"

namespace gru_cuda {
namespace {

// The device's figures (its shared memory: the most the kernels' dynamic shared memory
// may take), with its clusters where `clusters` asks for them (else none), and the
// virtual architecture of the kernels it runs.
// Those are measured once, by an occupancy query per cluster size, and asked again where
// the query failed; never while `may_query` is false (under a user's graph capture, where
// a call the capture does not allow would invalidate it): none until measured.
DeviceLimits device_limits(int device, bool clusters, bool may_query, int* ptx_version = nullptr) {
  struct Known {
    DeviceLimits limits;
    bool clusters_measured;
    int ptx_version;
  };
  static std::mutex mutex;
  static std::map<int, Known> known;
  const std::lock_guard<std::mutex> lock(mutex);
  auto found = known.find(device);
  if (found == known.end()) {
    int sms = 0, smem = 0, major = 0;
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    C10_CUDA_CHECK(
        cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    const PersistentKernelFacts facts = persistent_kernel_facts();
    // none before sm_90, nor where the kernels' cluster bodies were not built
    const bool clusters_measured = major < 9 || facts.ptx_version < 90;
    found = known
                .emplace(device, Known{{sms, smem - facts.static_smem}, clusters_measured,
                                       facts.ptx_version})
                .first;
  }
  Known& entry = found->second;
  if (clusters && may_query && !entry.clusters_measured) {
    const c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
    entry.clusters_measured =
        max_active_clusters(device, entry.limits.smem_per_block, entry.limits.clusters);
  }
  DeviceLimits limits = entry.limits;
  if (!clusters) limits.clusters[0] = limits.clusters[1] = 0;
  if (ptx_version != nullptr) *ptx_version = entry.ptx_version;
  return limits;
}

// The element size of a layer whose products may use tensor cores, else 0: float32 only as
// TF32, where cuDNN's RNNs may use TF32 too (the precision nn.GRU has there); kernels
// built for sm_80 on (the device is at least what they were built for).
int64_t mma_bytes(bool allowed, at::ScalarType dtype, int ptx_version) {
  if (!allowed || ptx_version < 80) return 0;
  if (dtype == at::kHalf || dtype == at::kBFloat16) return 2;
  return dtype == at::kFloat && rnn_allows_tf32() ? 4 : 0;
}

// The plan, or a refusal (counted). The forms and variants it may choose are the
// switches', or in auto mode those of the measured row for the layer's shape (none: the
// layer runs per step, uncounted); a row holds for the form it names only, since on
// another device the plan may choose another. Under a user's CUDA graph capture only the
// local and cluster forms (ordinary launches) of a padded layer: a refused cooperative
// launch would invalidate the capture instead of falling back, and a packed layer's
// steps are copied from host memory the graph would read again at every replay, after
// the call freed it.
bool plan_for(const at::Tensor& like, int64_t H, int64_t N, int64_t D, bool packed,
              PersistentPlan& plan) {
  const PersistentMode mode = persistent_switch().get();
  if (mode == PersistentMode::kOff) return false;
  const PersistentDefault* row = nullptr;
  if (mode == PersistentMode::kAuto) {
    row = persistent_default(c10::toString(like.scalar_type()), H, N, D);
    if (row == nullptr) return false;
  }
  const bool local =
      row ? row->form == PersistentForm::kLocal : persistent_local_allowed().load();
  const bool cluster =
      row ? row->form == PersistentForm::kCluster : persistent_cluster_allowed().load();
  const int64_t cluster_size = row ? row->cluster_size : persistent_cluster_size().load();
  const int64_t warp_rows = row ? row->warp_rows : persistent_warp_rows().load();
  const bool mma = row ? row->mma : persistent_mma_allowed().load();
  const bool registers = row ? row->registers : persistent_local_registers().load();

  const bool under_capture = capturing(like);
  int ptx_version = 0;
  DeviceLimits limits = device_limits(like.get_device(), cluster, !under_capture, &ptx_version);
  if (cluster_size == 16) limits.clusters[0] = 0;  // none of 8
  plan = plan_persistent(H, N, D, like.scalar_type() == at::kDouble, limits, local, warp_rows,
                         mma_bytes(mma, like.scalar_type(), ptx_version), registers,
                         like.element_size());
  const bool usable = plan.eligible() && (row == nullptr || plan.form == row->form) &&
                      (!under_capture || (plan.form != PersistentForm::kGrid && !packed));
  if (!usable) persistent_counts().refused++;
  return usable;
}

// Live rows and first rows of each step, on the device (absent when padded: N and t*N).
at::Tensor device_steps(bool packed, const std::vector<int64_t>& batch_sizes,
                        const std::vector<int64_t>& offsets, const at::Tensor& like) {
  if (!packed) return at::Tensor();
  std::vector<int64_t> both(batch_sizes);
  both.insert(both.end(), offsets.begin(), offsets.end());
  return at::tensor(both, at::kLong).pin_memory().to(like.device(), /*non_blocking=*/true);
}

PersistentShape shape_of(const PersistentPlan& plan, int64_t T, int64_t N, int64_t H,
                         int64_t D, const at::Tensor& steps, int64_t smem_bytes) {
  const int64_t* steps_ptr = steps.defined() ? steps.const_data_ptr<int64_t>() : nullptr;
  const bool grid = plan.form == PersistentForm::kGrid;
  return {T, N, H, D, plan.units_per_block, plan.blocks_per_direction, smem_bytes, steps_ptr,
          steps_ptr != nullptr ? steps_ptr + T : nullptr, plan.rows_per_warp,
          grid ? 0 : plan.rows_per_block, plan.mma, plan.threads, plan.register_chunks,
          plan.cluster_size};
}

// Whether the kernel was launched; false (a fallback) only for a grid the device cannot
// hold at once, which leaves no sticky error (clusters need no co-residency). Every
// other error is raised by name.
bool launched(cudaError_t err, const char* pass, const at::Tensor& like, int64_t H, int64_t N,
              int64_t D) {
  if (err == cudaSuccess) return true;
  (void)cudaGetLastError();
  TORCH_CHECK(err == cudaErrorCooperativeLaunchTooLarge, "gru_cuda: the persistent ", pass,
              " kernel failed to launch: ", cudaGetErrorName(err), " (", cudaGetErrorString(err),
              ")");
  TORCH_CHECK(persistent_switch().get() != PersistentMode::kRequire, "gru_cuda: the persistent ",
              pass, " kernels are required (require mode) and the plan takes this layer (H=", H,
              ", N=", N, ", directions=", D, ", ", like.scalar_type(),
              "), but the device cannot hold all of its blocks at once (",
              cudaGetErrorName(err), ")");
  persistent_counts().fallback++;
  return false;
}

}  // namespace

bool persistent_layer_forward(const LayerForward& layer) {
  PersistentPlan plan;
  if (layer.T == 0 || !plan_for(layer.gx, layer.H, layer.N, layer.D, layer.packed, plan)) {
    return false;
  }
  const at::Tensor steps =
      device_steps(layer.packed, layer.batch_sizes, layer.offsets, layer.gx);
  at::Tensor h_buf = at::empty({2, layer.D, layer.N, layer.H}, layer.h.options());
  h_buf[0].copy_(layer.h);
  PersistentForwardArgs args{};
  args.shape = shape_of(plan, layer.T, layer.N, layer.H, layer.D, steps, plan.smem_forward);
  args.gx = layer.gx.const_data_ptr();
  for (int64_t d = 0; d < layer.D; ++d) {
    args.w_hh[d] = layer.w_hh[d].const_data_ptr();
    args.b_ih[d] = layer.b_ih[d].const_data_ptr();
    args.b_hh[d] = layer.b_hh[d].const_data_ptr();
  }
  args.h_buf = h_buf.mutable_data_ptr();
  args.out = layer.output.mutable_data_ptr();
  args.saved = layer.saved != nullptr ? layer.saved->mutable_data_ptr() : nullptr;
  const int device = layer.gx.get_device();
  if (!launched(launch_persistent_forward(args, layer.gx.scalar_type(), device,
                                          c10::cuda::getCurrentCUDAStream(device)),
                "forward", layer.gx, layer.H, layer.N, layer.D)) {
    return false;
  }
  layer.h.copy_(h_buf[layer.T % 2]);
  persistent_counts().forward++;
  if (plan.form == PersistentForm::kLocal) {
    persistent_counts().local_forward++;
    if (plan.register_chunks != 0) persistent_counts().local_forward_registers++;
  } else if (plan.form == PersistentForm::kCluster) {
    persistent_counts().cluster_forward++;
    if (plan.mma != 0) persistent_counts().cluster_forward_mma++;
  } else if (plan.mma != 0) {
    persistent_counts().grid_forward_mma++;
  } else {
    persistent_counts().grid_forward_rows[plan.rows_per_warp == 4 ? 2 : plan.rows_per_warp - 1]++;
  }
  return true;
}

bool persistent_layer_backward(const LayerBackward& layer) {
  PersistentPlan plan;
  if (layer.T == 0 ||
      !plan_for(layer.grad_output, layer.H, layer.N, layer.D, layer.packed, plan)) {
    return false;
  }
  const at::Tensor steps =
      device_steps(layer.packed, layer.batch_sizes, layer.offsets, layer.grad_output);
  // The grid form exchanges gh's gradient through this; the others keep it on chip.
  const at::Tensor dgh_buf =
      plan.form == PersistentForm::kGrid
          ? at::empty({2, layer.D, layer.N, 3 * layer.H}, layer.dh.options())
          : at::Tensor();
  PersistentBackwardArgs args{};
  args.shape = shape_of(plan, layer.T, layer.N, layer.H, layer.D, steps, plan.smem_backward);
  args.grad_out = layer.grad_output.const_data_ptr();
  args.saved = layer.saved.const_data_ptr();
  for (int64_t d = 0; d < layer.D; ++d) args.w_hh[d] = layer.w_hh[d].const_data_ptr();
  args.dh = layer.dh.mutable_data_ptr();
  args.dgx = layer.dgx.mutable_data_ptr();
  args.dgh_n = layer.dgh_n.mutable_data_ptr();
  args.dgh_buf = dgh_buf.defined() ? dgh_buf.mutable_data_ptr() : nullptr;
  const int device = layer.grad_output.get_device();
  if (!launched(launch_persistent_backward(args, layer.grad_output.scalar_type(), device,
                                           c10::cuda::getCurrentCUDAStream(device)),
                "backward", layer.grad_output, layer.H, layer.N, layer.D)) {
    return false;
  }
  persistent_counts().backward++;
  if (plan.form == PersistentForm::kLocal) {
    persistent_counts().local_backward++;
    if (plan.register_chunks != 0) persistent_counts().local_backward_registers++;
  }
  if (plan.form == PersistentForm::kCluster) {
    persistent_counts().cluster_backward++;
    if (plan.mma != 0) {
      persistent_counts().cluster_backward_mma++;
    } else if (cluster_backward_lane_units(layer.H, plan.rows_per_block) == 2) {
      persistent_counts().cluster_backward_lane_units_2++;
    }
  } else if (plan.form == PersistentForm::kGrid && plan.mma != 0) {
    persistent_counts().grid_backward_mma++;
  }
  return true;
}

// The figures the plan takes for a device: SMs, shared memory a block, clusters of 8 and
// of 16 at once (whatever the cluster switch says), the kernels' virtual architecture,
// for gru_cuda.persistent_kernels.plan.
std::vector<int64_t> persistent_device_limits_op(int64_t device) {
  int ptx_version = 0;
  const DeviceLimits l = device_limits(static_cast<int>(device), true, true, &ptx_version);
  return {l.sm_count, l.smem_per_block, l.clusters[0], l.clusters[1], ptx_version};
}

TORCH_LIBRARY_FRAGMENT(gru_cuda, m) {
  m.def("persistent_device_limits(int device) -> int[]", &persistent_device_limits_op);
}

}  // namespace gru_cuda
