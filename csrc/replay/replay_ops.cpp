// The replay switch and cache as ops (host code, in CPU-only builds too): set the mode,
// ask where auto mode replays, read the counts, empty the cache.
#include <torch/library.h>

#include <vector>

#include "replay_defaults.h"
#include "replay_switch.h"

namespace gru_cuda {
namespace {

int64_t set_replay_mode_op(int64_t mode) { return replay_switch().exchange(mode); }

bool replay_default_op(c10::ScalarType dtype, int64_t H, int64_t N, int64_t D) {
  return replay_default(c10::toString(dtype), H, N, D) != nullptr;
}

// [hits, misses, captures, evictions, capped, failed, entries, bytes, cpu_runs, retired]:
// the cache's counts since the process started, what it holds now, the CPU's loops run
// through the replay addressing, and evicted graphs not yet destroyed.
std::vector<int64_t> replay_counts_op() {
  const std::lock_guard<std::mutex> lock(step_replay_mutex());
  const StepReplayCache& cache = step_replay_cache();
  const ReplayCounts& c = cache.counts();
  return {c.hits,       c.misses,      c.captures,
          c.evictions,  c.capped,      c.failed,
          cache.size(), cache.bytes(), replay_cpu_runs().load(), cache.retired()};
}

void clear_replay_cache_op() {
  const std::lock_guard<std::mutex> lock(step_replay_mutex());
  step_replay_cache().clear();
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(gru_cuda, m) {
  m.def("set_replay_mode(int mode) -> int", &set_replay_mode_op);
  m.def("replay_default(ScalarType dtype, int H, int N, int D) -> bool", &replay_default_op);
  m.def("replay_counts() -> int[]", &replay_counts_op);
  m.def("clear_replay_cache() -> ()", &clear_replay_cache_op);
}

}  // namespace gru_cuda
