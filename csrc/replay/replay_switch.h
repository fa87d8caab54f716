// Whether the CUDA per-step path replays its time loops from captured graphs, and the
// process's cache of them. By default (auto) only where a GPU run measured it faster
// (replay_defaults.h); GRU_CUDA_REPLAY=1 (or =always) or gru_cuda.replay() for every
// loop of the CUDA per-step path, =0 for none. Host code: CPU-only builds have
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
// every call replays). kAuto: as kOn for the shapes the table of measured wins holds.
enum class ReplayMode : int64_t { kOff = 0, kOn = 1, kAlways = 2, kAuto = 3 };

// Set at first use by GRU_CUDA_REPLAY: "0"/"off", "1"/"on", "always", "auto" (unset).
ModeSwitch<ReplayMode>& replay_switch();

// What the cache holds: a captured loop of the CUDA runner (cuda/step_replay.cpp).
struct ReplayEntry {
  virtual ~ReplayEntry() = default;
  // Whether destroying it now waits for nothing (its last replay has finished).
  virtual bool idle() const { return true; }
};
using StepReplayCache = ReplayCache<std::unique_ptr<ReplayEntry>>;

// Loops the CPU ran through the replay addressing (it has no graphs).
std::atomic<int64_t>& replay_cpu_runs();

// The cache, to be used only under the lock.
StepReplayCache& step_replay_cache();
std::mutex& step_replay_mutex();

}  // namespace gru_cuda
