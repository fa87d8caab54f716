// One GRU layer, one or both directions, over a padded (T, N, I) or packed (rows, I)
// sequence. The time loop and the GEMMs (through ATen, so they run on any device) live in
// gru_layer.cpp, the argument checks in gru_layer_checks.cpp; each device supplies only
// the fused elementwise pass of a step, over both directions' live rows at once.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/FunctionRef.h>

#include <array>
#include <memory>
#include <optional>
#include <tuple>
#include <vector>

#include "gru_step.h"

namespace gru_cuda {

// Weights per direction in the op's list: w_ih, w_hh[, b_ih, b_hh].
constexpr int64_t weights_per_direction(bool has_biases) { return has_biases ? 4 : 2; }

// The recurrent GEMMs of directions [first, end) of the step (gh = h W_hh^T in the
// forward, dh += dgh W_hh in the backward), supplied by the driver.
using StepGemms = c10::function_ref<void(int64_t first, int64_t end)>;

// The recurrent GEMMs of a per-step loop over its fixed buffers, set up once for the loop
// by a device that can (what does not change per step resolved once, both directions in
// one call where they fit). run: directions [first, end) of a step whose direction d has
// rows[d] live rows. It takes every step of the loop, or the device declines it at once.
class RecurrentGemms {
 public:
  virtual ~RecurrentGemms() = default;
  virtual void run(int64_t first, int64_t end, const int64_t* rows) = 0;
};

struct RecurrentGemmArgs {
  bool backward;
  const at::Tensor& state;              // (D, N, H): h, or dh
  const at::Tensor& workspace;          // (D, N, 3H): gh, or dgh
  const std::vector<at::Tensor>& w_hh;  // per direction (3H, H), contiguous
};

// A layer's whole time loop, for a device that can run it in one go (the persistent CUDA
// kernels). Layouts as in the per-step loop; live rows per step in batch_sizes.
struct LayerForward {
  const at::Tensor& gx;                 // (rows, D*3H), without b_ih
  const std::vector<at::Tensor>& w_hh;  // per direction (3H, H), contiguous
  const std::vector<at::Tensor>& b_ih;  // per direction (3H), zeros without bias
  const std::vector<at::Tensor>& b_hh;
  at::Tensor& h;                        // (D, N, H): in hx, out h_n
  at::Tensor& output;                   // D*H per row
  at::Tensor* saved;                    // (rows, D * kSavedBlocks * H), or nullptr
  const std::vector<int64_t>& batch_sizes;
  const std::vector<int64_t>& offsets;  // first row of each step
  bool packed;
  int64_t T, N, H, D;
};

struct LayerBackward {
  const at::Tensor& grad_output;        // D*H per row, contiguous
  const at::Tensor& saved;
  const std::vector<at::Tensor>& w_hh;
  at::Tensor& dh;                       // (D, N, H): in grad_hn, out grad_hx
  at::Tensor& dgx;                      // (rows, D*3H)
  at::Tensor& dgh_n;                    // (rows, D*H)
  const std::vector<int64_t>& batch_sizes;
  const std::vector<int64_t>& offsets;
  bool packed;
  int64_t T, N, H, D;
};

// A layer's per-step loop, for a device that replays it from a captured graph. run
// runs the loop on the buffers given: the state ((D, N, H): h in the forward, dh in the
// backward, in and out) and the workspace ((D, N, 3H): gh or dgh), with the call's
// tensors at the addresses device_bases points to (the steps hold offsets; device memory
// in a replayed graph), or with nullptr where `addresses` says. It allocates nothing.
struct StepLoop {
  bool backward;
  bool save;                             // forward: write `saved` for the backward
  const std::vector<at::Tensor>& w_hh;   // per direction, read by the loop's GEMMs
  const StepBases& addresses;            // the call's tensors
  at::Tensor& state;                     // the call's h or dh
  const std::vector<int64_t>& batch_sizes;
  int64_t T, N, H, D;
  c10::function_ref<void(at::Tensor& state, const at::Tensor& workspace,
                          const StepBases* device_bases)>
      run;
};

// What a device supplies: one step, the GEMMs (before the elementwise pass in the
// forward, after it in the backward) and the elementwise pass on the current stream.
// A device may run the two directions side by side. Optionally, a layer runner: when it
// returns true it has run the whole loop, else the driver runs it step by step.
// Optionally, a matmul for few rows (out = a @ w^T) that beats ATen's there; it returns
// false to decline, and the driver calls at::mm. Optionally, a replay runner for the
// per-step loop: true when it ran the loop (replayed or captured and replayed).
// Optionally, the layer's GEMMs (out = a @ b, + out when accumulate) without ATen's ops;
// false to decline. Optionally, a per-step loop's recurrent GEMMs set up once; nullptr
// to decline.
struct StepKernels {
  void (*forward_step)(const ForwardStep& step, StepGemms gemms);
  void (*backward_step)(const BackwardStep& step, StepGemms gemms);
  bool (*layer_forward)(const LayerForward& layer) = nullptr;
  bool (*layer_backward)(const LayerBackward& layer) = nullptr;
  bool (*small_matmul)(const at::Tensor& a, const at::Tensor& w, const at::Tensor& out) = nullptr;
  bool (*replay_steps)(const StepLoop& loop) = nullptr;
  bool (*matmul)(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b,
                 bool accumulate) = nullptr;
  std::unique_ptr<RecurrentGemms> (*recurrent_gemms)(const RecurrentGemmArgs& args) = nullptr;
};

extern const StepKernels cpu_step_kernels;

// input: (T, N, I), or (rows, I) with batch_sizes (a PackedSequence's, int64 on the CPU).
// hx: (D, N, H). weights: per direction w_ih, w_hh (and b_ih, b_hh with has_biases), the
// order of nn.GRU's _flat_weights.
// Returns output ((T, N, D*H) or (rows, D*H)), h_n (D, N, H) and the saved workspace
// ((rows, D * kSavedBlocks * H), or (0,) without need_backward).
std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_layer_forward(
    const at::Tensor& input, const at::Tensor& hx, at::TensorList weights, bool has_biases,
    bool bidirectional, const std::optional<at::Tensor>& batch_sizes, bool need_backward,
    const StepKernels& kernels);

// Returns grad_input, grad_hx and the weights' gradients in the order of weights; those
// that output_mask (input, hx, weights) does not ask for are None (an empty list
// for the weights), and their GEMMs are skipped.
using LayerGrads =
    std::tuple<std::optional<at::Tensor>, std::optional<at::Tensor>, std::vector<at::Tensor>>;
LayerGrads gru_layer_backward(
    const at::Tensor& grad_output, const at::Tensor& grad_hn, const at::Tensor& input,
    at::TensorList weights, bool has_biases, bool bidirectional, const at::Tensor& saved,
    const std::optional<at::Tensor>& batch_sizes, std::array<bool, 3> output_mask,
    const StepKernels& kernels);

// The op's two kernels for a device whose step kernels are kKernels, as each device's
// registration file registers them; they run on the input's device.
template <const StepKernels& kKernels>
std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_layer_kernel(
    const at::Tensor& input, const at::Tensor& hx, at::TensorList weights, bool has_biases,
    bool bidirectional, const std::optional<at::Tensor>& batch_sizes, bool need_backward) {
  return gru_layer_forward(input, hx, weights, has_biases, bidirectional, batch_sizes,
                           need_backward, kKernels);
}

template <const StepKernels& kKernels>
LayerGrads gru_layer_backward_kernel(
    const at::Tensor& grad_output, const at::Tensor& grad_hn, const at::Tensor& input,
    at::TensorList weights, bool has_biases, bool bidirectional, const at::Tensor& saved,
    const std::optional<at::Tensor>& batch_sizes, std::array<bool, 3> output_mask) {
  return gru_layer_backward(grad_output, grad_hn, input, weights, has_biases, bidirectional,
                            saved, batch_sizes, output_mask, kKernels);
}

}  // namespace gru_cuda
