// One time step of a layer, as the driver (gru_layer.cpp) hands it to a device's
// elementwise pass: both directions' live rows, their pointers and strides. The geometry
// (which row belongs to which direction, where each row's data lies) is defined here
// once, for the host and the device alike.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>

#include "gru_cell.h"

namespace gru_cuda {

// A step replayed from a captured graph keeps the arguments it was captured with, while
// the call's own tensors move every call: there a step's pointers into them are offsets,
// and the kernels add the call's addresses, read from device memory (StepBases). The
// buffers a graph owns (h, gh, dh, dgh) keep absolute pointers.
inline GRU_HOST_DEVICE const void* add_base(const void* p, uintptr_t base) {
  return reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) + base);
}
inline GRU_HOST_DEVICE void* add_base(void* p, uintptr_t base) {
  return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) + base);
}

// The call's addresses, per direction, in the order of the fields a direction rebases.
constexpr int kCallFields = 5;
struct StepBases {
  uintptr_t of[2][kCallFields];
};

// One direction's part of a step: its first `rows` rows of the batch are alive (packing
// sorts rows by length, so the live rows are a prefix). Pointers are to row 0 of this
// step; rows are `stride` elements apart for gx/dgx, out/grad_out/dgh_n and saved, 3H
// for gh/dgh and H for the state h/dh. Their element type is the layer's dtype.
struct DirectionForward {
  const void* gx;     // (rows, 3H) = x W_ih^T, without b_ih
  const void* gh;     // (rows, 3H) = h W_hh^T, without b_hh
  const void* b_ih;   // (3H), zeros when the layer has no bias
  const void* b_hh;   // (3H), likewise
  void* h;            // (rows, H) state, updated in place
  void* out;          // (rows, H)
  void* saved;        // (rows, kSavedBlocks * H), or nullptr when no backward will run
  int64_t rows;

  enum CallField { kGx, kBIh, kBHh, kOut, kSaved };
  GRU_HOST_DEVICE void add_bases(const uintptr_t* base) {
    gx = add_base(gx, base[kGx]);
    b_ih = add_base(b_ih, base[kBIh]);
    b_hh = add_base(b_hh, base[kBHh]);
    out = add_base(out, base[kOut]);
    saved = add_base(saved, base[kSaved]);
  }
};

struct DirectionBackward {
  const void* grad_out;  // (rows, H)
  void* dh;              // (rows, H): in, carried from the next step; out, its part that
                         // skips W_hh (the recurrent GEMM adds the rest)
  const void* saved;     // (rows, kSavedBlocks * H)
  void* dgx;             // (rows, 3H)
  void* dgh;             // (rows, 3H), the recurrent GEMM's input
  void* dgh_n;           // (rows, H), kept for dW_hh
  int64_t rows;

  enum CallField { kGradOut, kSaved, kDgx, kDghN };
  GRU_HOST_DEVICE void add_bases(const uintptr_t* base) {
    grad_out = add_base(grad_out, base[kGradOut]);
    saved = add_base(saved, base[kSaved]);
    dgx = add_base(dgx, base[kDgx]);
    dgh_n = add_base(dgh_n, base[kDghN]);
  }
};

// A step's rows are numbered direction 0's first, then direction 1's.
template <typename Direction>
struct Step {
  Direction dir[2];
  int num_directions;
  int64_t H;
  int64_t gx_stride;     // D * 3H
  int64_t out_stride;    // D * H
  int64_t saved_stride;  // D * kSavedBlocks * H
  c10::ScalarType dtype;
  bool save;                 // forward: write `saved` for the backward
  const StepBases* bases;    // the call's addresses where the pointers are offsets (device
                             // memory in a replayed graph), else nullptr

  GRU_HOST_DEVICE int64_t total_rows() const {
    return dir[0].rows + (num_directions > 1 ? dir[1].rows : 0);
  }
  // The step's rows [first_row(d), end_row(d)) are direction d's.
  GRU_HOST_DEVICE int64_t first_row(int d) const { return d == 0 ? 0 : dir[0].rows; }
  GRU_HOST_DEVICE int64_t end_row(int d) const { return first_row(d) + dir[d].rows; }
  GRU_HOST_DEVICE int direction_of(int64_t r) const { return r < dir[0].rows ? 0 : 1; }
  // Row r's direction with the call's addresses, and in i its index among its rows.
  GRU_HOST_DEVICE Direction direction_at(int64_t r, int64_t& i) const {
    const int d = direction_of(r);
    i = r - first_row(d);
    Direction at = dir[d];
    if (bases != nullptr) at.add_bases(bases->of[d]);
    return at;
  }
};

// Row i of a buffer whose rows are `stride` elements of scalar_t apart.
template <typename scalar_t, typename Pointer>
GRU_HOST_DEVICE inline scalar_t* row_of(Pointer base, int64_t i, int64_t stride) {
  return static_cast<scalar_t*>(base) + i * stride;
}

using ForwardStep = Step<DirectionForward>;
using BackwardStep = Step<DirectionBackward>;

// Row r's data in a forward step, typed: what gru_forward_element reads and writes.
template <typename scalar_t>
struct ForwardRow {
  const scalar_t *gx, *gh, *b_ih, *b_hh;
  scalar_t *h, *out, *saved;  // saved: nullptr in inference
};

// Row r's data in a backward step, typed: what gru_backward_element reads and writes.
template <typename scalar_t>
struct BackwardRow {
  const scalar_t *grad_out, *saved;
  scalar_t *dh, *dgx, *dgh, *dgh_n;
};

// The elementwise pass of a forward step (kSave: keep the workspace for the backward) and
// of a backward step, for the loops of every device: a row's data, then the element step
// of each of its units.
template <bool kSave>
struct ForwardPass {
  using StepType = ForwardStep;

  template <typename scalar_t>
  static GRU_HOST_DEVICE ForwardRow<scalar_t> row(const ForwardStep& step, int64_t r) {
    using in_t = const scalar_t;
    int64_t i;
    const DirectionForward f = step.direction_at(r, i);
    return {row_of<in_t>(f.gx, i, step.gx_stride), row_of<in_t>(f.gh, i, 3 * step.H),
            static_cast<in_t*>(f.b_ih), static_cast<in_t*>(f.b_hh),
            row_of<scalar_t>(f.h, i, step.H), row_of<scalar_t>(f.out, i, step.out_stride),
            kSave ? row_of<scalar_t>(f.saved, i, step.saved_stride) : nullptr};
  }

  template <typename acc_t, typename scalar_t>
  static GRU_HOST_DEVICE GRU_ALWAYS_INLINE void element(const ForwardRow<scalar_t>& row,
                                                        int64_t j, int64_t H) {
    gru_forward_element<acc_t, kSave>(row.gx, row.gh + j, H, row.b_ih, row.b_hh, row.h, row.h,
                                      row.out, row.saved, j, H);
  }
};

struct BackwardPass {
  using StepType = BackwardStep;

  template <typename scalar_t>
  static GRU_HOST_DEVICE BackwardRow<scalar_t> row(const BackwardStep& step, int64_t r) {
    int64_t i;
    const DirectionBackward b = step.direction_at(r, i);
    return {row_of<const scalar_t>(b.grad_out, i, step.out_stride),
            row_of<const scalar_t>(b.saved, i, step.saved_stride),
            row_of<scalar_t>(b.dh, i, step.H), row_of<scalar_t>(b.dgx, i, step.gx_stride),
            row_of<scalar_t>(b.dgh, i, 3 * step.H), row_of<scalar_t>(b.dgh_n, i, step.out_stride)};
  }

  template <typename acc_t, typename scalar_t>
  static GRU_HOST_DEVICE GRU_ALWAYS_INLINE void element(const BackwardRow<scalar_t>& row,
                                                        int64_t j, int64_t H) {
    gru_backward_element<acc_t>(row.grad_out, row.dh, row.saved, row.dgx, row.dgh + j, H,
                                row.dgh_n, j, H);
  }
};

}  // namespace gru_cuda
