// The arguments of the persistent layer kernels (cuda/gru_persistent_kernels.cuh): raw
// pointers and sizes, no CUDA types, so that host code and the kernels' CPU emulation in
// the tests share them.
#pragma once

#include <cstdint>

namespace gru_cuda {

struct PersistentShape {
  int64_t T, N, H, D;
  int64_t units_per_block, blocks_per_direction;
  int64_t smem_bytes;
  const int64_t* batch_sizes;  // device, T entries; nullptr when padded (N rows each step)
  const int64_t* offsets;      // device, first row of each step; nullptr when padded
  int64_t rows_per_warp;       // grid form's forward: batch rows a warp's product takes
  int64_t rows_per_block;      // local form: batch rows a block takes; cluster form: a
                               // cluster takes; 0: the grid form
  int64_t mma;                 // grid and cluster forms: 1 on tensor cores
  int64_t threads;             // a block's
  int64_t register_chunks;     // local form: W_hh's part a thread takes in registers (0: shared)
  int64_t cluster_size;        // cluster form: blocks a cluster; 0: another form
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

}  // namespace gru_cuda
