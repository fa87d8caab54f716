// Launches of the persistent layer kernels (gru_persistent.cu): a layer's whole time
// loop in one cooperative launch, W_hh held in shared memory, one grid barrier per step.
// Raw pointers in, a CUDA error out; persistent_layer.cpp prepares the buffers and falls
// back to the per-step path on any error.
#pragma once

#include <c10/core/ScalarType.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace gru_cuda {

struct PersistentShape {
  int64_t T, N, H, D;
  int64_t units_per_block, blocks_per_direction;
  int64_t smem_bytes;
  const int64_t* batch_sizes;  // device, T entries; nullptr when padded (N rows each step)
  const int64_t* offsets;      // device, first row of each step; nullptr when padded
};

struct PersistentForwardArgs {
  PersistentShape shape;
  const void* gx;        // (rows, D*3H)
  const void* w_hh[2];   // per direction (3H, H)
  const void* b_ih[2];
  const void* b_hh[2];
  void* h_buf;           // (2, D, N, H): the state, double-buffered by step; [0] holds hx
  void* out;             // (rows, D*H)
  void* saved;           // (rows, D * kSavedBlocks * H), or nullptr
};

struct PersistentBackwardArgs {
  PersistentShape shape;
  const void* grad_out;  // (rows, D*H)
  const void* saved;
  const void* w_hh[2];
  void* dh;              // (D, N, H): in grad_hn, out grad_hx
  void* dgx;             // (rows, D*3H)
  void* dgh_n;           // (rows, D*H)
  void* dgh_buf;         // (2, D, N, 3H): gh's gradient, exchanged between blocks
};

cudaError_t launch_persistent_forward(const PersistentForwardArgs& args, c10::ScalarType dtype,
                                      int device, cudaStream_t stream);
cudaError_t launch_persistent_backward(const PersistentBackwardArgs& args,
                                       c10::ScalarType dtype, int device, cudaStream_t stream);

}  // namespace gru_cuda
