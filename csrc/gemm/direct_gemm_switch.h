// Whether the CUDA per-step path calls cuBLAS directly for the layer's GEMMs (raw
// pointers, PyTorch's handle, float32 in the precision of nn.GRU's cuDNN RNN) instead of
// ATen's matmul ops, and how often it did. Opt-in until a GPU run has checked it:
// GRU_CUDA_DIRECT_GEMM=1 at start, or gru_cuda.direct_gemm().
#pragma once

#include <atomic>
#include <cstdint>

namespace gru_cuda {

std::atomic<bool>& direct_gemm_enabled();

// GEMMs run directly (calls into cuBLAS), and of those the steps' products that covered
// both directions in one call; GEMMs (or per-step loops) offered that it left to ATen (a
// layout or size it does not take).
struct DirectGemmCounts {
  std::atomic<int64_t> gemms{0}, batched{0}, declined{0};
};
DirectGemmCounts& direct_gemm_counts();

}  // namespace gru_cuda
