#include "gru_layer.h"

#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>

#include <ostream>

#include "gru_cell.h"

namespace gru_cuda {
namespace {

// The layer's sizes, read off checked arguments.
struct LayerShape {
  int64_t T = 0, N = 0, I = 0, H = 0, D = 1, rows = 0;
  bool packed = false;
  std::vector<int64_t> batch_sizes;  // live rows of each step (N each when padded)
  std::vector<int64_t> offsets;      // first row of each step
};

// An argument's name for error messages, put together only when one is raised: a
// one-step call would feel string building on every check.
struct ArgName {
  const char* base;
  bool reverse = false;
};

std::ostream& operator<<(std::ostream& out, const ArgName& name) {
  return out << name.base << (name.reverse ? "_reverse" : "");
}

constexpr const char* kWeightNames[] = {"w_ih", "w_hh", "b_ih", "b_hh"};

ArgName weight_name(int64_t k, int64_t per_direction) {
  return {kWeightNames[k % per_direction], k >= per_direction};
}

void check_like_input(const at::Tensor& input, const at::Tensor& t, const ArgName& name) {
  TORCH_CHECK(t.device() == input.device(), "gru_cuda: ", name, " is on ", t.device(),
              " but input is on ", input.device());
  TORCH_CHECK(t.scalar_type() == input.scalar_type(), "gru_cuda: ", name, " has dtype ",
              t.scalar_type(), " but input has dtype ", input.scalar_type());
}

void check_shape(const at::Tensor& t, at::IntArrayRef expected, const ArgName& name,
                 const char* meaning = "") {
  TORCH_CHECK(t.sizes() == expected, "gru_cuda: ", name, " must have shape ", expected, meaning,
              ", got ", t.sizes());
}

void read_batch_sizes(const at::Tensor& batch_sizes, const at::Tensor& input, LayerShape& s) {
  TORCH_CHECK(batch_sizes.device().is_cpu() && batch_sizes.scalar_type() == at::kLong &&
                  batch_sizes.dim() == 1,
              "gru_cuda: batch_sizes must be a 1-D int64 tensor on the CPU (a "
              "PackedSequence's), got ",
              batch_sizes.scalar_type(), ", ", batch_sizes.dim(), "-D, on ", batch_sizes.device());
  s.T = batch_sizes.numel();
  TORCH_CHECK(s.T >= 1, "gru_cuda: batch_sizes is empty");
  const at::Tensor values = batch_sizes.contiguous();
  const int64_t* v = values.const_data_ptr<int64_t>();
  s.batch_sizes.assign(v, v + s.T);
  for (int64_t t = 0; t < s.T; ++t) {
    TORCH_CHECK(v[t] >= 1 && (t == 0 || v[t] <= v[t - 1]),
                "gru_cuda: batch_sizes must be positive and non-increasing (a "
                "PackedSequence's), got ",
                at::IntArrayRef(s.batch_sizes));
    s.offsets.push_back(s.rows);
    s.rows += v[t];
  }
  TORCH_CHECK(s.rows == input.size(0), "gru_cuda: batch_sizes sum to ", s.rows,
              " rows but input has ", input.size(0));
  s.N = s.batch_sizes[0];
}

// Everything the kernels rely on, for the forward and the backward alike. state is hx
// in the forward and grad_hn in the backward: (D, N, H) either way.
LayerShape check_layer_args(const at::Tensor& input, const at::Tensor& state,
                            const char* state_name, at::TensorList weights, bool has_biases,
                            bool bidirectional, const std::optional<at::Tensor>& batch_sizes) {
  LayerShape s;
  s.D = bidirectional ? 2 : 1;
  s.packed = batch_sizes.has_value();
  TORCH_CHECK(input.is_floating_point(), "gru_cuda: input must be floating point, got ",
              input.scalar_type());
  TORCH_CHECK(input.dim() == (s.packed ? 2 : 3), "gru_cuda: input must be ",
              s.packed ? "2-D (rows, I) with batch_sizes" : "3-D (T, N, I)", ", got ",
              input.dim(), "-D");
  const int64_t per_direction = weights_per_direction(has_biases);
  TORCH_CHECK(static_cast<int64_t>(weights.size()) == s.D * per_direction, "gru_cuda: expected ",
              s.D * per_direction, " weights (w_ih, w_hh", has_biases ? ", b_ih, b_hh" : "",
              " per direction), got ", weights.size());
  for (size_t k = 0; k < weights.size(); ++k) {
    check_like_input(input, weights[k], weight_name(k, per_direction));
  }
  TORCH_CHECK(weights[1].dim() == 2 && weights[1].size(0) == 3 * weights[1].size(1),
              "gru_cuda: w_hh must have shape [3*H, H], got ", weights[1].sizes());
  s.H = weights[1].size(1);
  s.I = input.size(-1);
  for (int64_t d = 0; d < s.D; ++d) {
    const int64_t k = d * per_direction;
    check_shape(weights[k], {3 * s.H, s.I}, weight_name(k, per_direction), " (3*H, input size)");
    check_shape(weights[k + 1], {3 * s.H, s.H}, weight_name(k + 1, per_direction));
    if (has_biases) {
      check_shape(weights[k + 2], {3 * s.H}, weight_name(k + 2, per_direction));
      check_shape(weights[k + 3], {3 * s.H}, weight_name(k + 3, per_direction));
    }
  }
  if (s.packed) {
    read_batch_sizes(*batch_sizes, input, s);
  } else {
    s.T = input.size(0);
    s.N = input.size(1);
    s.rows = s.T * s.N;
    s.batch_sizes.assign(s.T, s.N);
    for (int64_t t = 0; t < s.T; ++t) s.offsets.push_back(t * s.N);
  }
  check_like_input(input, state, {state_name});
  check_shape(state, {s.D, s.N, s.H}, {state_name});
  return s;
}

struct LayerWeights {
  at::Tensor w_ih;               // (D*3H, I): both directions, one input-projection GEMM
  std::vector<at::Tensor> w_hh;  // per direction (3H, H)
  std::vector<at::Tensor> b_ih;  // per direction (3H), zeros without bias
  std::vector<at::Tensor> b_hh;  // likewise
};

LayerWeights layer_weights(at::TensorList weights, bool has_biases, const LayerShape& s,
                           const at::TensorOptions& options) {
  const int64_t per_direction = weights_per_direction(has_biases);
  std::vector<at::Tensor> w_ih;
  LayerWeights lw;
  const at::Tensor zeros = has_biases ? at::Tensor() : at::zeros({3 * s.H}, options);
  for (int64_t d = 0; d < s.D; ++d) {
    const int64_t k = d * per_direction;
    w_ih.push_back(weights[k]);
    lw.w_hh.push_back(weights[k + 1].contiguous());
    lw.b_ih.push_back(has_biases ? weights[k + 2].contiguous() : zeros);
    lw.b_hh.push_back(has_biases ? weights[k + 3].contiguous() : zeros);
  }
  lw.w_ih = s.D == 1 ? w_ih[0].contiguous() : at::cat(w_ih);
  return lw;
}

const void* element(const at::Tensor& t, int64_t i) {
  return static_cast<const char*>(t.const_data_ptr()) + i * t.element_size();
}

void* mutable_element(const at::Tensor& t, int64_t i) {
  return static_cast<char*>(t.mutable_data_ptr()) + i * t.element_size();
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
Step<Direction> make_step(const LayerShape& s, at::ScalarType dtype) {
  Step<Direction> step{};
  step.num_directions = static_cast<int>(s.D);
  step.H = s.H;
  step.gx_stride = s.D * 3 * s.H;
  step.out_stride = s.D * s.H;
  step.saved_stride = s.D * kSavedBlocks * s.H;
  step.dtype = dtype;
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

void forward_steps(const LayerShape& s, const LayerWeights& w, const at::Tensor& gx,
                   at::Tensor& h, at::Tensor& output, at::Tensor* saved,
                   const StepKernels& kernels) {
  const int64_t G = 3 * s.H;
  at::Tensor gh = at::empty({s.D, s.N, G}, gx.options());
  const PrefixViews h_rows(h, s.D), gh_rows(gh, s.D);
  std::vector<at::Tensor> w_hh_t;
  for (const at::Tensor& w_hh : w.w_hh) w_hh_t.push_back(w_hh.t());
  ForwardStep step = make_step<DirectionForward>(s, gx.scalar_type());
  at::Tensor gh_d[2], h_d[2];
  const auto gemm = [&](int64_t d) { at::mm_out(gh_d[d], h_d[d], w_hh_t[d]); };
  for (int64_t i = 0; i < s.T; ++i) {
    for (int64_t d = 0; d < s.D; ++d) {
      const StepRows at_step = step_rows(s, i, d);
      gh_d[d] = gh_rows.rows(d, at_step.rows);
      h_d[d] = h_rows.rows(d, at_step.rows);
      DirectionForward& f = step.dir[d];
      f.gx = element(gx, at_step.row0 * step.gx_stride + d * G);
      f.gh = gh_d[d].const_data_ptr();
      f.b_ih = w.b_ih[d].const_data_ptr();
      f.b_hh = w.b_hh[d].const_data_ptr();
      f.h = h_d[d].mutable_data_ptr();
      f.out = mutable_element(output, at_step.row0 * step.out_stride + d * s.H);
      f.saved = saved != nullptr ? mutable_element(*saved, at_step.row0 * step.saved_stride +
                                                               d * kSavedBlocks * s.H)
                                 : nullptr;
      f.rows = at_step.rows;
    }
    kernels.forward_step(step, gemm);
  }
}

void backward_steps(const LayerShape& s, const LayerWeights& w, const at::Tensor& grad_output,
                    const at::Tensor& saved, at::Tensor& dh, at::Tensor& dgx, at::Tensor& dgh_n,
                    const StepKernels& kernels) {
  const int64_t G = 3 * s.H;
  at::Tensor dgh = at::empty({s.D, s.N, G}, dgx.options());
  const PrefixViews dh_rows(dh, s.D), dgh_rows(dgh, s.D);
  BackwardStep step = make_step<DirectionBackward>(s, dgx.scalar_type());
  at::Tensor dh_d[2], dgh_d[2];
  const auto gemm = [&](int64_t d) { dh_d[d].addmm_(dgh_d[d], w.w_hh[d]); };  // + dgh @ W_hh
  for (int64_t i = s.T - 1; i >= 0; --i) {
    for (int64_t d = 0; d < s.D; ++d) {
      const StepRows at_step = step_rows(s, i, d);
      dh_d[d] = dh_rows.rows(d, at_step.rows);
      dgh_d[d] = dgh_rows.rows(d, at_step.rows);
      DirectionBackward& b = step.dir[d];
      b.grad_out = element(grad_output, at_step.row0 * step.out_stride + d * s.H);
      b.dh = dh_rows.full[d].mutable_data_ptr();
      b.saved = element(saved, at_step.row0 * step.saved_stride + d * kSavedBlocks * s.H);
      b.dgx = mutable_element(dgx, at_step.row0 * step.gx_stride + d * G);
      b.dgh = dgh_rows.full[d].mutable_data_ptr();
      b.dgh_n = mutable_element(dgh_n, at_step.row0 * step.out_stride + d * s.H);
      b.rows = at_step.rows;
    }
    kernels.backward_step(step, gemm);
  }
}

// The weights' gradients, per direction in the op's order, as GEMMs over all rows. gh's
// gradient is dgx's in the r and z blocks and dgh_n in the n block.
std::vector<at::Tensor> weight_grads(const LayerShape& s, bool has_biases, const at::Tensor& x,
                                     const at::Tensor& saved, const at::Tensor& dgx,
                                     const at::Tensor& dgh_n) {
  const int64_t G = 3 * s.H;
  const at::Tensor h_prev_all = saved.view({s.rows, s.D, kSavedBlocks, s.H});
  std::vector<at::Tensor> grads;
  for (int64_t d = 0; d < s.D; ++d) {
    const at::Tensor dgx_d = dgx.narrow(1, d * G, G);
    const at::Tensor dgh_n_d = dgh_n.narrow(1, d * s.H, s.H);
    const at::Tensor h_prev = h_prev_all.select(1, d).select(1, kSavedHPrev);
    grads.push_back(at::mm(dgx_d.t(), x));
    at::Tensor grad_w_hh = at::empty({G, s.H}, dgx.options());
    at::Tensor grad_w_hh_rz = grad_w_hh.narrow(0, 0, 2 * s.H);
    at::Tensor grad_w_hh_n = grad_w_hh.narrow(0, 2 * s.H, s.H);
    at::mm_out(grad_w_hh_rz, dgx_d.narrow(1, 0, 2 * s.H).t(), h_prev);
    at::mm_out(grad_w_hh_n, dgh_n_d.t(), h_prev);
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
  const LayerShape s =
      check_layer_args(input_, hx_, "hx", weights, has_biases, bidirectional, batch_sizes);
  const c10::OptionalDeviceGuard on_input_device(input_.device());
  const at::TensorOptions options = input_.options();
  const LayerWeights w = layer_weights(weights, has_biases, s, options);

  at::Tensor gx = at::empty({s.rows, s.D * 3 * s.H}, options);
  at::mm_out(gx, input_.contiguous().view({s.rows, s.I}), w.w_ih.t());
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
  if (!whole_layer_ran) forward_steps(s, w, gx, h, output, saved_or_null, kernels);
  return {output, h, saved};
}

LayerGrads gru_layer_backward(
    const at::Tensor& grad_output_, const at::Tensor& grad_hn_, const at::Tensor& input_,
    at::TensorList weights, bool has_biases, bool bidirectional, const at::Tensor& saved_,
    const std::optional<at::Tensor>& batch_sizes, std::array<bool, 3> output_mask,
    const StepKernels& kernels) {
  const LayerShape s = check_layer_args(input_, grad_hn_, "grad_hn", weights, has_biases,
                                        bidirectional, batch_sizes);
  check_like_input(input_, grad_output_, {"grad_output"});
  const std::vector<int64_t> output_shape =
      s.packed ? std::vector<int64_t>{s.rows, s.D * s.H} : std::vector<int64_t>{s.T, s.N, s.D * s.H};
  check_shape(grad_output_, output_shape, {"grad_output"});
  check_like_input(input_, saved_, {"saved"});
  check_shape(saved_, {s.rows, s.D * kSavedBlocks * s.H}, {"saved"});

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
  if (!whole_layer_ran) backward_steps(s, w, grad_output, saved, dh, dgx, dgh_n, kernels);

  std::optional<at::Tensor> grad_input;
  if (output_mask[0]) {
    at::Tensor g = at::empty_like(input_);  // input's layout, as autograd expects
    if (g.is_contiguous()) {
      at::Tensor g2 = g.view({s.rows, s.I});
      at::mm_out(g2, dgx, w.w_ih);
    } else {
      g.copy_(at::mm(dgx, w.w_ih).view(input_.sizes()));
    }
    grad_input = g;
  }
  std::vector<at::Tensor> grad_weights;
  if (output_mask[2]) {
    const at::Tensor x = input_.contiguous().view({s.rows, s.I});
    grad_weights = weight_grads(s, has_biases, x, saved, dgx, dgh_n);
  }
  return {grad_input, output_mask[1] ? std::optional<at::Tensor>(dh) : std::nullopt,
          grad_weights};
}

}  // namespace gru_cuda
