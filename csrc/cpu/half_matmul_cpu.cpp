// float16 GEMMs on the CPU through float32 (see the header). Converting the operands
// costs a pass over them; the float16 product it replaces ran at about 2 GFLOP/s on an
// AVX-512 EPYC (a 16 x 384 x 128 step product: 400 us).
#include <ATen/ATen.h>
#include <torch/library.h>

#include <atomic>
#include <vector>

#include "half_matmul_cpu.h"

namespace gru_cuda {
namespace {

// Products computed here since the process started, so that tests see this path ran.
std::atomic<int64_t> products{0};

bool half_on_cpu(const at::Tensor& t) { return t.scalar_type() == at::kHalf && t.is_cpu(); }

// PyTorch's float16 GEMV is fast for one row times a transposed weight (x W^T, a batch of
// one's projections: a GRUCell step at N=1 ran 1.75x faster than converting its weights
// first), slow for one row times W (the backward's dh += dgh W: 3x slower at T=100, N=1).
bool fast_in_half(const at::Tensor& out, const at::Tensor& b) {
  return out.size(0) == 1 && b.stride(0) == 1;
}

void product_into(const at::Tensor& out, const at::Tensor& a_float, const at::Tensor& b_float,
                  bool accumulate) {
  products.fetch_add(1, std::memory_order_relaxed);
  const at::Tensor product = at::mm(a_float, b_float);
  at::Tensor out_ = out;
  out_.copy_(accumulate ? product.add_(out) : product);
}

// Forward: gh[d] = h[d] W_hh[d]^T; backward: dh[d] += dgh[d] W_hh[d], a direction's live
// rows a step. Directions may run on threads of their own: a call touches only its own.
class HalfRecurrentGemms final : public RecurrentGemms {
 public:
  explicit HalfRecurrentGemms(const RecurrentGemmArgs& args)
      : backward_(args.backward), state_(args.state), workspace_(args.workspace) {
    for (const at::Tensor& w : args.w_hh) {
      w_float_.push_back(backward_ ? w.to(at::kFloat) : w.t().to(at::kFloat));
    }
  }

  void run(int64_t first, int64_t end, const int64_t* rows) override {
    for (int64_t d = first; d < end; ++d) {
      const at::Tensor state = state_[d].narrow(0, 0, rows[d]);
      const at::Tensor workspace = workspace_[d].narrow(0, 0, rows[d]);
      if (backward_) {
        product_into(state, workspace.to(at::kFloat), w_float_[d], true);
      } else {
        product_into(workspace, state.to(at::kFloat), w_float_[d], false);
      }
    }
  }

 private:
  bool backward_;
  at::Tensor state_, workspace_;
  std::vector<at::Tensor> w_float_;
};

}  // namespace

bool half_matmul_cpu(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b,
                     bool accumulate) {
  if (!half_on_cpu(out) || !half_on_cpu(a) || !half_on_cpu(b) || fast_in_half(out, b)) {
    return false;
  }
  product_into(out, a.to(at::kFloat), b.to(at::kFloat), accumulate);
  return true;
}

std::unique_ptr<RecurrentGemms> half_recurrent_gemms_cpu(const RecurrentGemmArgs& args) {
  // a batch of one's forward: h W_hh^T, a fast float16 GEMV a step
  if (!half_on_cpu(args.state) || (!args.backward && args.state.size(1) == 1)) return nullptr;
  return std::make_unique<HalfRecurrentGemms>(args);
}

TORCH_LIBRARY_FRAGMENT(gru_cuda, m) {
  m.def("half_matmul_count() -> int", [] { return products.load(); });
}

}  // namespace gru_cuda
