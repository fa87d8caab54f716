#include "gru_layer.h"

#include <ATen/ATen.h>

#include "gru_cell.h"

namespace gru_cuda {
namespace {

void check_same(const at::Tensor& ref, const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == ref.scalar_type(), "gru_cuda: ", name, " has dtype ",
              t.scalar_type(), " but input has dtype ", ref.scalar_type());
  TORCH_CHECK(t.device() == ref.device(), "gru_cuda: ", name, " is on ", t.device(),
              " but input is on ", ref.device());
}

const int64_t* lengths_ptr(const std::optional<at::Tensor>& lengths, const at::Tensor& input) {
  if (!lengths.has_value()) return nullptr;
  const at::Tensor& l = *lengths;
  TORCH_CHECK(l.scalar_type() == at::kLong, "gru_cuda: lengths must be int64, got ",
              l.scalar_type());
  TORCH_CHECK(l.dim() == 1 && l.size(0) == input.size(1), "gru_cuda: lengths must have shape [",
              input.size(1), "] (one per batch row), got ", l.sizes());
  TORCH_CHECK(l.device() == input.device(), "gru_cuda: lengths is on ", l.device(),
              " but input is on ", input.device());
  TORCH_CHECK(l.is_contiguous(), "gru_cuda: lengths must be contiguous");
  return l.const_data_ptr<int64_t>();
}

void check_layer_args(const at::Tensor& input, const at::Tensor& hx, const at::Tensor& w_ih,
                      const at::Tensor& w_hh) {
  TORCH_CHECK(input.dim() == 3, "gru_cuda: input must be 3-D (T, N, I), got ", input.dim(),
              "-D");
  TORCH_CHECK(input.is_floating_point(), "gru_cuda: input must be floating point, got ",
              input.scalar_type());
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == 3 * w_hh.size(1),
              "gru_cuda: w_hh must have shape [3*H, H], got ", w_hh.sizes());
  const int64_t H = w_hh.size(1);
  TORCH_CHECK(w_ih.dim() == 2 && w_ih.size(0) == 3 * H && w_ih.size(1) == input.size(2),
              "gru_cuda: w_ih must have shape [", 3 * H, ", ", input.size(2),
              "] (input size ", input.size(2), "), got ", w_ih.sizes());
  TORCH_CHECK(hx.dim() == 2 && hx.size(0) == input.size(1) && hx.size(1) == H,
              "gru_cuda: hx must have shape [", input.size(1), ", ", H, "], got ", hx.sizes());
  check_same(input, hx, "hx");
  check_same(input, w_ih, "w_ih");
  check_same(input, w_hh, "w_hh");
}

void check_bias(const at::Tensor& input, const std::optional<at::Tensor>& b, int64_t H,
                const char* name) {
  if (!b.has_value()) return;
  TORCH_CHECK(b->dim() == 1 && b->size(0) == 3 * H, "gru_cuda: ", name, " must have shape [",
              3 * H, "], got ", b->sizes());
  check_same(input, *b, name);
}

// out = a @ b^T (+ bias), written into out.
void project_out(at::Tensor& out, const at::Tensor& a, const at::Tensor& w,
                const std::optional<at::Tensor>& bias) {
  if (bias.has_value()) {
    at::addmm_out(out, *bias, a, w.t());
  } else {
    at::mm_out(out, a, w.t());
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> gru_layer_forward(
    const at::Tensor& input_, const at::Tensor& hx_, const at::Tensor& w_ih_,
    const at::Tensor& w_hh_, const std::optional<at::Tensor>& b_ih_,
    const std::optional<at::Tensor>& b_hh_, bool reverse,
    const std::optional<at::Tensor>& lengths_, bool need_backward, const StepKernels& kernels) {
  check_layer_args(input_, hx_, w_ih_, w_hh_);
  const int64_t T = input_.size(0), N = input_.size(1), I = input_.size(2);
  const int64_t H = w_hh_.size(1);
  check_bias(input_, b_ih_, H, "b_ih");
  check_bias(input_, b_hh_, H, "b_hh");

  const at::Tensor input = input_.contiguous();
  const at::Tensor w_ih = w_ih_.contiguous();
  const at::Tensor w_hh = w_hh_.contiguous();
  std::optional<at::Tensor> b_ih, b_hh, lengths;
  if (b_ih_) b_ih = b_ih_->contiguous();
  if (b_hh_) b_hh = b_hh_->contiguous();
  if (lengths_) lengths = lengths_->contiguous();
  const int64_t* len = lengths_ptr(lengths, input);

  // Input projection of every step in one GEMM.
  at::Tensor gx = at::empty({T * N, 3 * H}, input.options());
  project_out(gx, input.view({T * N, I}), w_ih, b_ih);
  gx = gx.view({T, N, 3 * H});

  at::Tensor output = at::empty({T, N, H}, input.options());
  // Inference keeps nothing: an empty saved tensor, and the kernels skip those writes.
  at::Tensor saved = need_backward ? at::empty({T, N, kSavedBlocks * H}, input.options())
                                   : at::empty({0}, input.options());
  at::Tensor h = hx_.contiguous().clone();
  at::Tensor gh = at::empty({N, 3 * H}, input.options());
  const at::Tensor b_hh_or_zeros = b_hh ? *b_hh : at::zeros({3 * H}, input.options());

  for (int64_t s = 0; s < T; ++s) {
    const int64_t t = reverse ? T - 1 - s : s;
    project_out(gh, h, w_hh, std::nullopt);
    kernels.forward_step(gx[t], gh, b_hh_or_zeros, h, output[t],
                         need_backward ? saved[t] : at::Tensor(), len, t);
  }
  return {output, h, saved};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
gru_layer_backward(const at::Tensor& grad_output_, const at::Tensor& grad_hn_,
                   const at::Tensor& input_, const at::Tensor& w_ih_, const at::Tensor& w_hh_,
                   const at::Tensor& saved_, bool reverse,
                   const std::optional<at::Tensor>& lengths_, const StepKernels& kernels) {
  TORCH_CHECK(input_.dim() == 3, "gru_cuda: input must be 3-D (T, N, I), got ", input_.dim(),
              "-D");
  const int64_t T = input_.size(0), N = input_.size(1), I = input_.size(2);
  const int64_t H = w_hh_.size(1);
  TORCH_CHECK(grad_output_.sizes() == at::IntArrayRef({T, N, H}),
              "gru_cuda: grad_output must have shape [", T, ", ", N, ", ", H, "], got ",
              grad_output_.sizes());
  TORCH_CHECK(grad_hn_.sizes() == at::IntArrayRef({N, H}), "gru_cuda: grad_hn must have shape [",
              N, ", ", H, "], got ", grad_hn_.sizes());
  TORCH_CHECK(saved_.sizes() == at::IntArrayRef({T, N, kSavedBlocks * H}),
              "gru_cuda: saved must have shape [", T, ", ", N, ", ", kSavedBlocks * H,
              "], got ", saved_.sizes());
  check_same(input_, grad_output_, "grad_output");
  check_same(input_, grad_hn_, "grad_hn");
  check_same(input_, w_ih_, "w_ih");
  check_same(input_, w_hh_, "w_hh");
  check_same(input_, saved_, "saved");

  const at::Tensor grad_output = grad_output_.contiguous();
  const at::Tensor input = input_.contiguous();
  const at::Tensor w_ih = w_ih_.contiguous();
  const at::Tensor w_hh = w_hh_.contiguous();
  const at::Tensor saved = saved_.contiguous();
  std::optional<at::Tensor> lengths;
  if (lengths_) lengths = lengths_->contiguous();
  const int64_t* len = lengths_ptr(lengths, input);

  at::Tensor dgx = at::empty({T, N, 3 * H}, input.options());
  at::Tensor dgh_n = at::empty({T, N, H}, input.options());
  at::Tensor dgh = at::empty({N, 3 * H}, input.options());
  at::Tensor dh = grad_hn_.contiguous().clone();

  for (int64_t s = T - 1; s >= 0; --s) {
    const int64_t t = reverse ? T - 1 - s : s;
    kernels.backward_step(grad_output[t], dh, saved[t], dgx[t], dgh, dgh_n[t], len, t);
    dh.addmm_(dgh, w_hh);  // dh_prev = dh' * z + dgh @ W_hh
  }

  // Weight, bias and input gradients over all T*N rows at once. gh's gradient is
  // dgx's in the r and z blocks and dgh_n in the n block.
  const at::Tensor dgx2 = dgx.view({T * N, 3 * H});
  const at::Tensor dgh_n2 = dgh_n.view({T * N, H});
  const at::Tensor h_prev = saved.view({T * N, kSavedBlocks * H}).narrow(1, 4 * H, H);
  // grad_input takes input's layout (what autograd and torch.compile expect of a gradient).
  at::Tensor grad_input = at::empty_like(input_);
  if (grad_input.is_contiguous()) {
    at::Tensor grad_input2 = grad_input.view({T * N, I});
    at::mm_out(grad_input2, dgx2, w_ih);
  } else {
    grad_input.copy_(at::mm(dgx2, w_ih).view({T, N, I}));
  }
  at::Tensor grad_w_ih = at::mm(dgx2.t(), input.view({T * N, I}));
  at::Tensor grad_w_hh = at::empty({3 * H, H}, input.options());
  at::Tensor grad_w_hh_rz = grad_w_hh.narrow(0, 0, 2 * H);
  at::Tensor grad_w_hh_n = grad_w_hh.narrow(0, 2 * H, H);
  at::mm_out(grad_w_hh_rz, dgx2.narrow(1, 0, 2 * H).t(), h_prev);
  at::mm_out(grad_w_hh_n, dgh_n2.t(), h_prev);
  at::Tensor grad_b_ih = dgx2.sum(0);
  at::Tensor grad_b_hh = at::cat({grad_b_ih.narrow(0, 0, 2 * H), dgh_n2.sum(0)});
  return {grad_input, dh, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh};
}

}  // namespace gru_cuda
