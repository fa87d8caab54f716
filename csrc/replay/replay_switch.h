// Whether the CUDA per-step path replays its time loops from captured graphs, and the
// process's cache of them. Opt-in until a GPU run has checked it: off unless
// GRU_CUDA_REPLAY=1 (or =always) or gru_cuda.replay(). Host code: CPU-only builds have
// the switch and an always empty cache, so that the Python API is the same everywhere.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "../mode_switch.h"
#include "replay_cache.h"

namespace gru_cuda {

// kAlways: capture at a shape's first call, with no per-layer limit (tests, benchmarks:
// every call replays).
enum class ReplayMode : int64_t { kOff = 0, kOn = 1, kAlways = 2 };

// Set at first use by GRU_CUDA_REPLAY: "1"/"on", "always", else off.
ModeSwitch<ReplayMode>& replay_switch();

// What the cache holds: a captured loop of the CUDA runner (cuda/step_replay.cpp).
struct ReplayEntry {
  virtual ~ReplayEntry() = default;
};
using StepReplayCache = ReplayCache<std::unique_ptr<ReplayEntry>>;

// Loops the CPU ran through the replay addressing (it has no graphs).
std::atomic<int64_t>& replay_cpu_runs();

// The cache, to be used only under the lock.
StepReplayCache& step_replay_cache();
std::mutex& step_replay_mutex();

}  // namespace gru_cuda
