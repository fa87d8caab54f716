// Where the CUDA per-step path replays its loops by default (the switch's auto mode): the
// shapes where a GPU run measured replay correct and faster than eager steps, forward and
// forward+backward, in the same process. Each row names the results folder
// (benchmarks/results/) that measured it. Empty until a GPU run has checked replay: by
// default every loop runs eagerly.
#pragma once

#include "../measured_table.h"

namespace gru_cuda {

struct ReplayDefault {
  ShapeRange shapes;
  std::string_view run;

  constexpr bool well_formed() const { return true; }
};

inline constexpr std::array<ReplayDefault, 0> kReplayDefaults{};
static_assert(rows_well_formed(kReplayDefaults));

inline const ReplayDefault* replay_default(std::string_view dtype, int64_t H, int64_t N,
                                           int64_t D) {
  return measured_row(kReplayDefaults, dtype, H, N, D);
}

}  // namespace gru_cuda
