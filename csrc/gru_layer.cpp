#include "gru_layer.h"

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include "gru_cell.h"
#include "gru_layer_checks.h"

namespace gru_cuda {
namespace {

// The layer's sizes, concrete, and where each step's rows are.
struct LayerShape {
  int64_t T = 0, N = 0, I = 0, H = 0, D = 1, rows = 0;
  bool packed = false;
  std::vector<int64_t> batch_sizes;  // live rows of each step (N each when padded)
  std::vector<int64_t> offsets;      // first row of each step
};

// From the checked sizes, with batch_sizes' values read.
LayerShape layer_shape(const LayerSizes& sizes, const std::optional<at::Tensor>& batch_sizes,
                       const char* state_name) {
  LayerShape s;
  s.T = sizes.T.expect_int();
  s.N = sizes.N.expect_int();
  s.I = sizes.I.expect_int();
  s.H = sizes.H.expect_int();
  s.rows = sizes.rows.expect_int();
  s.D = sizes.D;
  s.packed = sizes.packed;
  if (s.packed) {
    s.batch_sizes = read_batch_sizes(*batch_sizes, sizes, state_name);
  } else {
    s.batch_sizes.assign(s.T, s.N);
  }
  int64_t row = 0;
  for (const int64_t n : s.batch_sizes) {
    s.offsets.push_back(row);
    row += n;
  }
  return s;
}

struct LayerWeights {
  std::vector<at::Tensor> w_ih;  // per direction (3H, I)
  std::vector<at::Tensor> w_hh;  // per direction (3H, H)
  std::vector<at::Tensor> b_ih;  // per direction (3H), zeros without bias
  std::vector<at::Tensor> b_hh;  // likewise
};

LayerWeights layer_weights(at::TensorList weights, bool has_biases, const LayerShape& s,
                           const at::TensorOptions& options) {
  const int64_t per_direction = weights_per_direction(has_biases);
  LayerWeights lw;
  const at::Tensor zeros = has_biases ? at::Tensor() : at::zeros({3 * s.H}, options);
  for (int64_t d = 0; d < s.D; ++d) {
    const int64_t k = d * per_direction;
    lw.w_ih.push_back(weights[k].contiguous());
    lw.w_hh.push_back(weights[k + 1].contiguous());
    lw.b_ih.push_back(has_biases ? weights[k + 2].contiguous() : zeros);
    lw.b_hh.push_back(has_biases ? weights[k + 3].contiguous() : zeros);
  }
  return lw;
}

// (D*3H, I): both directions' input weights, for one GEMM over all rows.
at::Tensor stacked_w_ih(const LayerWeights& w) {
  return w.w_ih.size() == 1 ? w.w_ih[0] : at::cat(w.w_ih);
}

// out = a @ b, or out += a @ b: the device's GEMM where it takes it, else ATen's.
void layer_mm(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b, bool accumulate,
              const StepKernels& kernels) {
  if (kernels.matmul != nullptr && kernels.matmul(out, a, b, accumulate)) return;
  at::Tensor out_ = out;
  if (accumulate) {
    out_.addmm_(a, b);
  } else {
    at::mm_out(out_, a, b);
  }
}

// out = a @ w^T: the device's small matmul where it takes the case, else layer_mm on
// w_t, w's transposed view (made once by a caller that calls every step: 0.45 us a call).
void matmul_wt(const at::Tensor& out, const at::Tensor& a, const at::Tensor& w,
               const at::Tensor& w_t, const StepKernels& kernels) {
  if (kernels.small_matmul == nullptr || !kernels.small_matmul(a, w, out)) {
    layer_mm(out, a, w_t, false, kernels);
  }
}

// gx = x W_ih^T (rows, D*3H), without b_ih. Both directions in one GEMM, unless the
// device's small matmul takes a direction (then it takes both: same shapes and dtype).
at::Tensor input_projection(const at::Tensor& x, const LayerWeights& w, const LayerShape& s,
                            const StepKernels& kernels) {
  const int64_t G = 3 * s.H;
  at::Tensor gx = at::empty({s.rows, s.D * G}, x.options());
  const at::Tensor gx_0 = s.D == 1 ? gx : gx.narrow(1, 0, G);  // a view: 0.4 us of a 20 us step
  if (kernels.small_matmul != nullptr && kernels.small_matmul(x, w.w_ih[0], gx_0)) {
    for (int64_t d = 1; d < s.D; ++d) {
      matmul_wt(gx.narrow(1, d * G, G), x, w.w_ih[d], w.w_ih[d].t(), kernels);
    }
  } else {
    layer_mm(gx, x, stacked_w_ih(w).t(), false, kernels);
  }
  return gx;
}

uintptr_t address_of(const at::Tensor& t) {
  return reinterpret_cast<uintptr_t>(t.const_data_ptr());
}

uintptr_t mutable_address_of(const at::Tensor& t) {  // of a tensor the steps write
  return reinterpret_cast<uintptr_t>(t.mutable_data_ptr());
}

// Element i of a buffer at `base` (an address, or 0 where steps hold offsets).
void* element_at(uintptr_t base, int64_t i, int64_t element_size) {
  return reinterpret_cast<void*>(base + static_cast<uintptr_t>(i * element_size));
}

// Where the call's tensors are, per direction in the order of the steps' CallFields.
StepBases forward_addresses(const at::Tensor& gx, const LayerWeights& w, const at::Tensor& output,
                            const at::Tensor* saved, int64_t D) {
  StepBases a{};
  for (int64_t d = 0; d < D; ++d) {
    uintptr_t* of = a.of[d];
    of[DirectionForward::kGx] = address_of(gx);
    of[DirectionForward::kBIh] = address_of(w.b_ih[d]);
    of[DirectionForward::kBHh] = address_of(w.b_hh[d]);
    of[DirectionForward::kOut] = mutable_address_of(output);
    of[DirectionForward::kSaved] = saved != nullptr ? mutable_address_of(*saved) : 0;
  }
  return a;
}

StepBases backward_addresses(const at::Tensor& grad_output, const at::Tensor& saved,
                             const at::Tensor& dgx, const at::Tensor& dgh_n, int64_t D) {
  StepBases a{};
  for (int64_t d = 0; d < D; ++d) {
    uintptr_t* of = a.of[d];
    of[DirectionBackward::kGradOut] = address_of(grad_output);
    of[DirectionBackward::kSaved] = address_of(saved);
    of[DirectionBackward::kDgx] = mutable_address_of(dgx);
    of[DirectionBackward::kDghN] = mutable_address_of(dgh_n);
  }
  return a;
}

// The first n rows of each direction's (N, ...) slice of a (D, N, ...) buffer; views are
// made once, and per step only when a packed batch shrinks.
struct PrefixViews {
  std::vector<at::Tensor> full;
  PrefixViews(const at::Tensor& buffer, int64_t D) {
    for (int64_t d = 0; d < D; ++d) full.push_back(buffer[d]);
  }
  at::Tensor rows(int64_t d, int64_t n) const {
    return n == full[d].size(0) ? full[d] : full[d].narrow(0, 0, n);
  }
};

template <typename Direction>
Step<Direction> make_step(const LayerShape& s, at::ScalarType dtype, const StepBases* bases) {
  Step<Direction> step{};
  step.num_directions = static_cast<int>(s.D);
  step.H = s.H;
  step.gx_stride = s.D * 3 * s.H;
  step.out_stride = s.D * s.H;
  step.saved_stride = s.D * kSavedBlocks * s.H;
  step.dtype = dtype;
  step.bases = bases;
  return step;
}

// Where direction d is at loop index i: direction 0 runs forward in time, direction 1
// backward; the step's live rows and the first of them.
struct StepRows {
  int64_t t, rows, row0;
};

StepRows step_rows(const LayerShape& s, int64_t i, int64_t d) {
  const int64_t t = d == 0 ? i : s.T - 1 - i;
  return {t, s.batch_sizes[t], s.offsets[t]};
}

// Where the steps' pointers into the call's tensors start: at their addresses, or at 0
// where the kernels add the addresses from device_bases.
const StepBases& origin_of(const StepBases& addresses, const StepBases* device_bases) {
  static const StepBases zero{};
  return device_bases != nullptr ? zero : addresses;
}

// The device's recurrent GEMMs for the loop, or nullptr: the driver's own then.
std::unique_ptr<RecurrentGemms> prepared_gemms(bool backward, const at::Tensor& state,
                                               const at::Tensor& workspace,
                                               const LayerWeights& w,
                                               const StepKernels& kernels) {
  if (kernels.recurrent_gemms == nullptr) return nullptr;
  return kernels.recurrent_gemms({backward, state, workspace, w.w_hh});
}

// The per-step loops over the call's tensors at `addresses`, the state h (dh) in place,
// gh (dgh) a (D, N, 3H) workspace; each direction's rows of the state and workspace start
// at d * N rows.
void forward_steps(const LayerShape& s, const LayerWeights& w, const StepBases& addresses,
                   const StepBases* device_bases, bool save, at::Tensor& h,
                   const at::Tensor& gh, const StepKernels& kernels) {
  const StepBases& origin = origin_of(addresses, device_bases);
  const int64_t G = 3 * s.H;
  const int64_t size = h.element_size();
  TORCH_INTERNAL_ASSERT(h.is_contiguous() && gh.is_contiguous());
  const uintptr_t h_base = mutable_address_of(h), gh_base = address_of(gh);
  ForwardStep step = make_step<DirectionForward>(s, h.scalar_type(), device_bases);
  step.save = save;
  int64_t rows[2] = {0, 0};
  const std::unique_ptr<RecurrentGemms> prepared = prepared_gemms(false, h, gh, w, kernels);
  const PrefixViews h_rows(h, s.D), gh_rows(gh, s.D);
  const at::Tensor w_hh_t[2] = {w.w_hh[0].t(), s.D > 1 ? w.w_hh[1].t() : at::Tensor()};
  const auto gemms = [&](int64_t first, int64_t end) {
    if (prepared != nullptr) return prepared->run(first, end, rows);
    for (int64_t d = first; d < end; ++d) {
      matmul_wt(gh_rows.rows(d, rows[d]), h_rows.rows(d, rows[d]), w.w_hh[d], w_hh_t[d],
                kernels);
    }
  };
  for (int64_t i = 0; i < s.T; ++i) {
    for (int64_t d = 0; d < s.D; ++d) {
      const StepRows at_step = step_rows(s, i, d);
      rows[d] = at_step.rows;
      const uintptr_t* of = origin.of[d];
      DirectionForward& f = step.dir[d];
      f.gx = element_at(of[f.kGx], at_step.row0 * step.gx_stride + d * G, size);
      f.gh = element_at(gh_base, d * s.N * G, size);
      f.b_ih = element_at(of[f.kBIh], 0, size);
      f.b_hh = element_at(of[f.kBHh], 0, size);
      f.h = element_at(h_base, d * s.N * s.H, size);
      f.out = element_at(of[f.kOut], at_step.row0 * step.out_stride + d * s.H, size);
      f.saved = save ? element_at(of[f.kSaved],
                                  at_step.row0 * step.saved_stride + d * kSavedBlocks * s.H, size)
                     : nullptr;
      f.rows = at_step.rows;
    }
    kernels.forward_step(step, gemms);
  }
}

void backward_steps(const LayerShape& s, const LayerWeights& w, const StepBases& addresses,
                    const StepBases* device_bases, at::Tensor& dh, const at::Tensor& dgh,
                    const StepKernels& kernels) {
  const StepBases& origin = origin_of(addresses, device_bases);
  const int64_t G = 3 * s.H;
  const int64_t size = dh.element_size();
  TORCH_INTERNAL_ASSERT(dh.is_contiguous() && dgh.is_contiguous());
  const uintptr_t dh_base = mutable_address_of(dh), dgh_base = mutable_address_of(dgh);
  BackwardStep step = make_step<DirectionBackward>(s, dh.scalar_type(), device_bases);
  int64_t rows[2] = {0, 0};
  const std::unique_ptr<RecurrentGemms> prepared = prepared_gemms(true, dh, dgh, w, kernels);
  const PrefixViews dh_rows(dh, s.D), dgh_rows(dgh, s.D);
  const auto gemms = [&](int64_t first, int64_t end) {
    if (prepared != nullptr) return prepared->run(first, end, rows);
    for (int64_t d = first; d < end; ++d) {
      layer_mm(dh_rows.rows(d, rows[d]), dgh_rows.rows(d, rows[d]), w.w_hh[d], true, kernels);
    }
  };
  for (int64_t i = s.T - 1; i >= 0; --i) {
    for (int64_t d = 0; d < s.D; ++d) {
      const StepRows at_step = step_rows(s, i, d);
      rows[d] = at_step.rows;
      const uintptr_t* of = origin.of[d];
      DirectionBackward& b = step.dir[d];
      b.grad_out = element_at(of[b.kGradOut], at_step.row0 * step.out_stride + d * s.H, size);
      b.dh = element_at(dh_base, d * s.N * s.H, size);
      b.saved = element_at(of[b.kSaved],
                           at_step.row0 * step.saved_stride + d * kSavedBlocks * s.H, size);
      b.dgx = element_at(of[b.kDgx], at_step.row0 * step.gx_stride + d * G, size);
      b.dgh = element_at(dgh_base, d * s.N * G, size);
      b.dgh_n = element_at(of[b.kDghN], at_step.row0 * step.out_stride + d * s.H, size);
      b.rows = at_step.rows;
    }
    kernels.backward_step(step, gemms);
  }
}

// The per-step loop, replayed where the device can (and the call's addresses are then
// offsets from device memory), else eagerly on the call's own tensors.
void run_step_loop(const StepLoop& loop, const StepKernels& kernels) {
  if (kernels.replay_steps != nullptr && kernels.replay_steps(loop)) return;
  const at::Tensor workspace = at::empty({loop.D, loop.N, 3 * loop.H}, loop.state.options());
  loop.run(loop.state, workspace, nullptr);
}

// The weights' gradients, per direction in the op's order, as GEMMs over all rows. gh's
// gradient is dgx's in the r and z blocks and dgh_n in the n block.
std::vector<at::Tensor> weight_grads(const LayerShape& s, bool has_biases, const at::Tensor& x,
                                     const at::Tensor& saved, const at::Tensor& dgx,
                                     const at::Tensor& dgh_n, const StepKernels& kernels) {
  const int64_t G = 3 * s.H;
  const at::Tensor h_prev_all = saved.view({s.rows, s.D, kSavedBlocks, s.H});
  std::vector<at::Tensor> grads;
  for (int64_t d = 0; d < s.D; ++d) {
    const at::Tensor dgx_d = dgx.narrow(1, d * G, G);
    const at::Tensor dgh_n_d = dgh_n.narrow(1, d * s.H, s.H);
    const at::Tensor h_prev = h_prev_all.select(1, d).select(1, kSavedHPrev);
    at::Tensor grad_w_ih = at::empty({G, s.I}, dgx.options());
    layer_mm(grad_w_ih, dgx_d.t(), x, false, kernels);
    grads.push_back(grad_w_ih);
    at::Tensor grad_w_hh = at::empty({G, s.H}, dgx.options());
    layer_mm(grad_w_hh.narrow(0, 0, 2 * s.H), dgx_d.narrow(1, 0, 2 * s.H).t(), h_prev, false,
             kernels);
    layer_mm(grad_w_hh.narrow(0, 2 * s.H, s.H), dgh_n_d.t(), h_prev, false, kernels);
    grads.push_back(grad_w_hh);
    if (has_biases) {
      at::Tensor grad_b_ih = dgx_d.sum(0);
      grads.push_back(grad_b_ih);
      grads.push_back(at::cat({grad_b_ih.narrow(0, 0, 2 * s.H), dgh_n_d.sum(0)}));
    }
  }
  return grads;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_layer_forward(
    const at::Tensor& input_, const at::Tensor& hx_, at::TensorList weights, bool has_biases,
    bool bidirectional, const std::optional<at::Tensor>& batch_sizes, bool need_backward,
    const StepKernels& kernels) {
  const LayerShape s = layer_shape(
      check_layer_args(input_, hx_, "hx", weights, has_biases, bidirectional, batch_sizes),
      batch_sizes, "hx");
  const c10::OptionalDeviceGuard on_input_device(input_.device());
  const at::TensorOptions options = input_.options();
  const LayerWeights w = layer_weights(weights, has_biases, s, options);

  const at::Tensor gx = input_projection(input_.contiguous().view({s.rows, s.I}), w, s, kernels);
  at::Tensor output = s.packed ? at::empty({s.rows, s.D * s.H}, options)
                               : at::empty({s.T, s.N, s.D * s.H}, options);
  // Inference keeps nothing: an empty saved tensor, and the kernels skip those writes.
  at::Tensor saved = need_backward ? at::empty({s.rows, s.D * kSavedBlocks * s.H}, options)
                                   : at::empty({0}, options);
  at::Tensor h = hx_.contiguous().clone();
  at::Tensor* saved_or_null = need_backward ? &saved : nullptr;
  const bool whole_layer_ran =
      kernels.layer_forward != nullptr &&
      kernels.layer_forward({gx, w.w_hh, w.b_ih, w.b_hh, h, output, saved_or_null,
                             s.batch_sizes, s.offsets, s.packed, s.T, s.N, s.H, s.D});
  if (!whole_layer_ran) {
    const StepBases addresses = forward_addresses(gx, w, output, saved_or_null, s.D);
    const auto run = [&](at::Tensor& state, const at::Tensor& gh, const StepBases* bases) {
      forward_steps(s, w, addresses, bases, need_backward, state, gh, kernels);
    };
    run_step_loop({false, need_backward, w.w_hh, addresses, h, s.batch_sizes, s.T, s.N, s.H,
                   s.D, run},
                  kernels);
  }
  return {output, h, saved};
}

LayerGrads gru_layer_backward(
    const at::Tensor& grad_output_, const at::Tensor& grad_hn_, const at::Tensor& input_,
    at::TensorList weights, bool has_biases, bool bidirectional, const at::Tensor& saved_,
    const std::optional<at::Tensor>& batch_sizes, std::array<bool, 3> output_mask,
    const StepKernels& kernels) {
  const LayerShape s = layer_shape(
      check_layer_backward_args(grad_output_, grad_hn_, input_, weights, has_biases,
                                bidirectional, saved_, batch_sizes),
      batch_sizes, "grad_hn");

  const c10::OptionalDeviceGuard on_input_device(input_.device());
  const at::TensorOptions options = input_.options();
  const LayerWeights w = layer_weights(weights, has_biases, s, options);
  const at::Tensor grad_output = grad_output_.contiguous();
  const at::Tensor saved = saved_.contiguous();

  at::Tensor dgx = at::empty({s.rows, s.D * 3 * s.H}, options);
  at::Tensor dgh_n = at::empty({s.rows, s.D * s.H}, options);
  at::Tensor dh = grad_hn_.contiguous().clone();
  const bool whole_layer_ran =
      kernels.layer_backward != nullptr &&
      kernels.layer_backward({grad_output, saved, w.w_hh, dh, dgx, dgh_n, s.batch_sizes,
                              s.offsets, s.packed, s.T, s.N, s.H, s.D});
  if (!whole_layer_ran) {
    const StepBases addresses = backward_addresses(grad_output, saved, dgx, dgh_n, s.D);
    const auto run = [&](at::Tensor& state, const at::Tensor& dgh, const StepBases* bases) {
      backward_steps(s, w, addresses, bases, state, dgh, kernels);
    };
    run_step_loop({true, false, w.w_hh, addresses, dh, s.batch_sizes, s.T, s.N, s.H, s.D, run},
                  kernels);
  }

  std::optional<at::Tensor> grad_input;
  if (output_mask[0]) {
    at::Tensor g = at::empty_like(input_);  // input's layout, as autograd expects
    if (g.is_contiguous()) {
      layer_mm(g.view({s.rows, s.I}), dgx, stacked_w_ih(w), false, kernels);
    } else {
      at::Tensor g2 = at::empty({s.rows, s.I}, options);
      layer_mm(g2, dgx, stacked_w_ih(w), false, kernels);
      g.copy_(g2.view(input_.sizes()));
    }
    grad_input = g;
  }
  std::vector<at::Tensor> grad_weights;
  if (output_mask[2]) {
    const at::Tensor x = input_.contiguous().view({s.rows, s.I});
    grad_weights = weight_grads(s, has_biases, x, saved, dgx, dgh_n, kernels);
  }
  return {grad_input, output_mask[1] ? std::optional<at::Tensor>(dh) : std::nullopt,
          grad_weights};
}

}  // namespace gru_cuda
