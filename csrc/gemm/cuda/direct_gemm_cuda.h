// The layer's GEMMs through cuBLAS directly (csrc/gemm/direct_gemm_switch.h says when):
// no dispatcher, no tensor ops, PyTorch's handle with its stream and workspace, and
// float32 in the precision of nn.GRU's cuDNN RNN (TF32 where that allows it).
#pragma once

#include <ATen/core/Tensor.h>

namespace gru_cuda {

// out = a @ b (+ out when accumulate), 2-D CUDA matrices of one dtype. False where the
// switch is off, or (counted as declined) the layout or sizes are not cuBLAS's: the
// caller then runs ATen's op.
bool direct_matmul_cuda(const at::Tensor& out, const at::Tensor& a, const at::Tensor& b,
                        bool accumulate);

}  // namespace gru_cuda
