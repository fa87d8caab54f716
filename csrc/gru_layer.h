// One GRU layer, one or both directions, over a padded (T, N, I) or packed (rows, I)
// sequence. The argument checks, the time loop and the GEMMs (through ATen, so they run
// on any device) live in gru_layer.cpp; each device supplies only the fused elementwise
// pass of a step, over both directions' live rows at once.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/FunctionRef.h>

#include <array>
#include <optional>
#include <tuple>
#include <vector>

namespace gru_cuda {

// One direction's part of a step: its first `rows` rows of the batch are alive (packing
// sorts rows by length, so the live rows are a prefix). Pointers are to row 0 of this
// step; rows are `stride` elements apart for gx/dgx, out/grad_out/dgh_n and saved, 3H
// for gh/dgh and H for the state h/dh. Their element type is the layer's dtype.
struct DirectionForward {
  const void* gx;     // (rows, 3H) = x W_ih^T, without b_ih
  const void* gh;     // (rows, 3H) = h W_hh^T, without b_hh
  const void* b_ih;   // (3H), zeros when the layer has no bias
  const void* b_hh;   // (3H), likewise
  void* h;            // (rows, H) state, updated in place
  void* out;          // (rows, H)
  void* saved;        // (rows, kSavedBlocks * H), or nullptr when no backward will run
  int64_t rows;
};

struct DirectionBackward {
  const void* grad_out;  // (rows, H)
  void* dh;              // (rows, H): in, carried from the next step; out, its part that
                         // skips W_hh (the recurrent GEMM adds the rest)
  const void* saved;     // (rows, kSavedBlocks * H)
  void* dgx;             // (rows, 3H)
  void* dgh;             // (rows, 3H), the recurrent GEMM's input
  void* dgh_n;           // (rows, H), kept for dW_hh
  int64_t rows;
};

template <typename Direction>
struct Step {
  Direction dir[2];
  int num_directions;
  int64_t H;
  int64_t gx_stride;     // D * 3H
  int64_t out_stride;    // D * H
  int64_t saved_stride;  // D * kSavedBlocks * H
  at::ScalarType dtype;
};

using ForwardStep = Step<DirectionForward>;
using BackwardStep = Step<DirectionBackward>;

// The recurrent GEMM of one direction of the step (gh = h W_hh^T in the forward,
// dh += dgh W_hh in the backward), supplied by the driver.
using DirectionGemm = c10::function_ref<void(int64_t direction)>;

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

// What a device supplies: one step, the GEMMs (before the elementwise pass in the
// forward, after it in the backward) and the elementwise pass on the current stream.
// A device may run the two directions side by side. Optionally, a layer runner: when it
// returns true it has run the whole loop, else the driver runs it step by step.
struct StepKernels {
  void (*forward_step)(const ForwardStep& step, DirectionGemm gemm);
  void (*backward_step)(const BackwardStep& step, DirectionGemm gemm);
  bool (*layer_forward)(const LayerForward& layer) = nullptr;
  bool (*layer_backward)(const LayerBackward& layer) = nullptr;
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

}  // namespace gru_cuda
