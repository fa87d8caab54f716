#include "replay_switch.h"

namespace gru_cuda {

ModeSwitch<ReplayMode>& replay_switch() {
  static ModeSwitch<ReplayMode> mode("GRU_CUDA_REPLAY", "always", "replay");
  return mode;
}

std::atomic<int64_t>& replay_cpu_runs() {
  static std::atomic<int64_t> runs{0};
  return runs;
}

StepReplayCache& step_replay_cache() {
  // Never destroyed: its graphs must not be freed after the CUDA context at exit.
  static StepReplayCache* cache = new StepReplayCache(ReplayLimits{});
  return *cache;
}

std::mutex& step_replay_mutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace gru_cuda
