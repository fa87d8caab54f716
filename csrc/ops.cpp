// The op schemas (the contract between the C++ kernels and the Python package),
// the CPU kernels' registration and the autocast wrapper.
#include <Python.h>

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/library.h>

#include "gru_cell.h"
#include "gru_layer.h"
#include "persistent/persistent_plan.h"
#include "persistent/persistent_switch.h"

namespace gru_cuda {
namespace {

using ForwardResult = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
ForwardResult gru_layer_cpu(const at::Tensor& input, const at::Tensor& hx,
                            at::TensorList weights, bool has_biases, bool bidirectional,
                            const std::optional<at::Tensor>& batch_sizes, bool need_backward) {
  return gru_layer_forward(input, hx, weights, has_biases, bidirectional, batch_sizes,
                           need_backward, cpu_step_kernels);
}

LayerGrads gru_layer_backward_cpu(const at::Tensor& grad_output, const at::Tensor& grad_hn,
                                      const at::Tensor& input, at::TensorList weights,
                                      bool has_biases, bool bidirectional,
                                      const at::Tensor& saved,
                                      const std::optional<at::Tensor>& batch_sizes,
                                      std::array<bool, 3> output_mask) {
  return gru_layer_backward(grad_output, grad_hn, input, weights, has_biases, bidirectional,
                            saved, batch_sizes, output_mask, cpu_step_kernels);
}

// Under torch.autocast the whole layer runs in the autocast dtype.
template <c10::DeviceType device_type, c10::DispatchKey autocast_key>
ForwardResult gru_layer_autocast(const at::Tensor& input, const at::Tensor& hx,
                                 at::TensorList weights, bool has_biases, bool bidirectional,
                                 const std::optional<at::Tensor>& batch_sizes,
                                 bool need_backward) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(autocast_key);
  const at::ScalarType dtype = at::autocast::get_autocast_dtype(device_type);
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("gru_cuda::gru_layer", "")
                       .typed<decltype(gru_layer_cpu)>();
  return op.call(at::autocast::cached_cast(dtype, input, device_type),
                 at::autocast::cached_cast(dtype, hx, device_type),
                 at::autocast::cached_cast(dtype, weights, device_type), has_biases,
                 bidirectional, batch_sizes, need_backward);
}

// The plan for given sizes and device figures, so that CPU tests check it; the fields in
// the order of kPersistentPlanFields.
std::vector<int64_t> persistent_plan_op(int64_t H, int64_t N, int64_t D, bool is_double,
                                        int64_t sm_count, int64_t smem_per_block) {
  const PersistentPlan p = plan_persistent(H, N, D, is_double, {sm_count, smem_per_block});
  return {static_cast<int64_t>(p.refusal), p.blocks_per_direction, p.units_per_block, p.grid,
          p.threads, p.smem_forward, p.smem_backward};
}

int64_t set_persistent_mode_op(int64_t mode) {
  TORCH_CHECK(mode >= 0 && mode <= 2,
              "gru_cuda: persistent mode must be 0 (off), 1 (on) or 2 (require), got ", mode);
  return static_cast<int64_t>(set_persistent_mode(static_cast<PersistentMode>(mode)));
}

// [forward runs, backward runs, refused, fallbacks] since the process started.
std::vector<int64_t> persistent_counts_op() {
  const PersistentCounts& c = persistent_counts();
  return {c.forward.load(), c.backward.load(), c.refused.load(), c.fallback.load()};
}

}  // namespace

TORCH_LIBRARY(gru_cuda, m) {
  // input: (T, N, I), or a PackedSequence's (rows, I) with its batch_sizes (int64, CPU).
  // hx: (D, N, H). weights: w_ih, w_hh[, b_ih, b_hh] per direction.
  // Returns output, h_n and the workspace the backward reads.
  m.def(
      "gru_layer(Tensor input, Tensor hx, Tensor[] weights, bool has_biases, "
      "bool bidirectional, Tensor? batch_sizes, bool need_backward=True) "
      "-> (Tensor, Tensor, Tensor)");
  // Returns grad_input, grad_hx and the weights' gradients; output_mask says which are
  // wanted (the others are None, or an empty list for the weights).
  m.def(
      "gru_layer_backward(Tensor grad_output, Tensor grad_hn, Tensor input, Tensor[] weights, "
      "bool has_biases, bool bidirectional, Tensor saved, Tensor? batch_sizes, "
      "bool[3] output_mask) -> (Tensor?, Tensor?, Tensor[])");
  // The persistent CUDA kernels: their launch plan, the switch, and how often they ran.
  m.def("persistent_plan(int H, int N, int D, bool is_double, int sm_count, "
        "int smem_per_block) -> int[]", &persistent_plan_op);
  m.def("set_persistent_mode(int mode) -> int", &set_persistent_mode_op);
  m.def("persistent_counts() -> int[]", &persistent_counts_op);
}

TORCH_LIBRARY_IMPL(gru_cuda, CPU, m) {
  m.impl("gru_layer", &gru_layer_cpu);
  m.impl("gru_layer_backward", &gru_layer_backward_cpu);
}

TORCH_LIBRARY_IMPL(gru_cuda, AutocastCUDA, m) {
  m.impl("gru_layer", &gru_layer_autocast<c10::DeviceType::CUDA, c10::DispatchKey::AutocastCUDA>);
}

TORCH_LIBRARY_IMPL(gru_cuda, AutocastCPU, m) {
  m.impl("gru_layer", &gru_layer_autocast<c10::DeviceType::CPU, c10::DispatchKey::AutocastCPU>);
}

}  // namespace gru_cuda

// Importing gru_cuda._C loads this library, which registers the ops above. The saved
// workspace's layout and the persistent plan's refusals and fields are exported so that Python
// follows the C++ definitions.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  PyObject* module = PyModule_Create(&module_def);
  if (module != nullptr &&
      (PyModule_AddIntConstant(module, "SAVED_BLOCKS", gru_cuda::kSavedBlocks) != 0 ||
       PyModule_AddStringConstant(module, "SAVED_BLOCK_NAMES", gru_cuda::kSavedBlockNames) != 0 ||
       PyModule_AddStringConstant(module, "PERSISTENT_REFUSALS",
                                  gru_cuda::kPersistentRefusalNames) != 0 ||
       PyModule_AddStringConstant(module, "PERSISTENT_PLAN_FIELDS",
                                  gru_cuda::kPersistentPlanFields) != 0)) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
