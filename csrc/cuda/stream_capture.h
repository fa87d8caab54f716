// Whether the caller's current stream on a tensor's device is being captured into a CUDA
// graph (the user's own capture): then the op's launches must join it as they are.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

namespace gru_cuda {

inline bool capturing(const at::Tensor& like) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  C10_CUDA_CHECK(
      cudaStreamIsCapturing(c10::cuda::getCurrentCUDAStream(like.get_device()), &status));
  return status != cudaStreamCaptureStatusNone;
}

}  // namespace gru_cuda
