// One GRU layer in one direction over a whole sequence. The time loop and the GEMMs
// (through ATen, so they run on any device) live in gru_layer.cpp; each device
// supplies only the fused elementwise pass of a step.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace gru_cuda {

// lengths: nullptr, or N per-row valid lengths on the tensors' device; row n takes
// part in step t only while t < lengths[n] (else its state is carried, its output 0).
struct StepKernels {
  // gx_t: (N, 3H) with b_ih. gh: (N, 3H) = h W_hh^T without b_hh, which the step adds
  // (one launch fewer per step than a GEMM with bias). b_hh: (3H), zeros without bias.
  // h: (N, H) state, updated in place. out_t: (N, H).
  // saved_t: (N, 5H) = [r, z, n, gh_n, h_prev] for the backward, or undefined when
  // no backward will run.
  void (*forward_step)(const at::Tensor& gx_t, const at::Tensor& gh, const at::Tensor& b_hh,
                       const at::Tensor& h, const at::Tensor& out_t, const at::Tensor& saved_t,
                       const int64_t* lengths, int64_t t);
  // dh: (N, H), in: gradient carried from step t+1; out: its part that skips W_hh.
  // Written: dgx_t (N, 3H), the gradient of gx_t; dgh (N, 3H), that of gh, a scratch
  // reused every step by the recurrent GEMM; dgh_n_t (N, H), its n block, kept for
  // dW_hh (its r and z blocks equal dgx's).
  void (*backward_step)(const at::Tensor& grad_out_t, const at::Tensor& dh,
                        const at::Tensor& saved_t, const at::Tensor& dgx_t,
                        const at::Tensor& dgh, const at::Tensor& dgh_n_t,
                        const int64_t* lengths, int64_t t);
};

extern const StepKernels cpu_step_kernels;

// Returns (output (T, N, H), h_n (N, H), saved (T, N, 5H), or (0,) without need_backward).
std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_layer_forward(
    const at::Tensor& input, const at::Tensor& hx, const at::Tensor& w_ih,
    const at::Tensor& w_hh, const std::optional<at::Tensor>& b_ih,
    const std::optional<at::Tensor>& b_hh, bool reverse,
    const std::optional<at::Tensor>& lengths, bool need_backward, const StepKernels& kernels);

// Returns (grad_input, grad_hx, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
gru_layer_backward(const at::Tensor& grad_output, const at::Tensor& grad_hn,
                   const at::Tensor& input, const at::Tensor& w_ih, const at::Tensor& w_hh,
                   const at::Tensor& saved, bool reverse,
                   const std::optional<at::Tensor>& lengths, const StepKernels& kernels);

}  // namespace gru_cuda
