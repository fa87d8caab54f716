// The graph cache's bookkeeping (csrc/replay/replay_cache.h), without CUDA: built and run
// by tests/test_replay.py. Prints each failed check and exits non-zero if any failed.
#include <cstdio>
#include <memory>

#include "replay/replay_cache.h"

using gru_cuda::ReplayAction;
using gru_cuda::ReplayCache;
using gru_cuda::ReplayKey;
using gru_cuda::ReplayLimits;

namespace {

int failures = 0;

#define CHECK(cond)                                                \
  do {                                                             \
    if (!(cond)) {                                                 \
      std::printf("%s:%d: failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                  \
    }                                                              \
  } while (0)

// An entry that counts how many of its kind are alive (captured graphs own GPU memory:
// dropping one must destroy it).
struct Loop {
  int id;
  std::shared_ptr<int> alive;
  Loop(int id_, std::shared_ptr<int> alive_) : id(id_), alive(std::move(alive_)) { ++*alive; }
  Loop(Loop&& other) noexcept : id(other.id), alive(std::move(other.alive)) {}
  ~Loop() {
    if (alive) --*alive;
  }
};
// The cache with the mode calls pass it: capture every miss at once (the "always" mode).
struct Cache : ReplayCache<Loop> {
  explicit Cache(ReplayLimits limits, bool at_once_ = false)
      : ReplayCache<Loop>(limits), at_once(at_once_) {}
  bool at_once;
};

const ReplayKey kA{100, 8, 512}, kB{100, 8, 256}, kC{50, 8, 256}, kD{50, 8, 128};

ReplayAction find(Cache& cache, const ReplayKey& key, int64_t layer = 1, int* id = nullptr) {
  Loop* entry = nullptr;
  const ReplayAction action = cache.find(key, layer, &entry, cache.at_once);
  CHECK((action == ReplayAction::kReplay) == (entry != nullptr));
  if (id != nullptr) *id = entry != nullptr ? entry->id : -1;
  return action;
}

void capture(Cache& cache, const ReplayKey& key, int id, std::shared_ptr<int> alive,
             int64_t bytes = 10, int64_t layer = 1) {
  cache.insert(key, layer, Loop(id, std::move(alive)), bytes);
}

void a_shape_is_captured_at_its_second_call_and_replayed_after() {
  auto alive = std::make_shared<int>(0);
  Cache cache(ReplayLimits{});
  CHECK(find(cache, kA) == ReplayAction::kRunEagerly);
  CHECK(find(cache, kB) == ReplayAction::kRunEagerly);
  CHECK(find(cache, kA) == ReplayAction::kCapture);
  capture(cache, kA, 7, alive);
  int id = 0;
  CHECK(find(cache, kA, 1, &id) == ReplayAction::kReplay);
  CHECK(id == 7);
  CHECK(find(cache, kA, 1, &id) == ReplayAction::kReplay);
  CHECK(find(cache, kB) == ReplayAction::kCapture);  // seen once before
  const auto& c = cache.counts();
  CHECK(c.hits == 2 && c.misses == 4 && c.captures == 1 && c.evictions == 0);
  CHECK(cache.size() == 1 && cache.bytes() == 10 && *alive == 1);
}

void capturing_at_once_skips_the_eager_call() {
  ReplayLimits limits;
  Cache cache(limits, /*at_once=*/true);
  CHECK(find(cache, kA) == ReplayAction::kCapture);
}

void the_least_recently_used_entry_goes_first() {
  auto alive = std::make_shared<int>(0);
  ReplayLimits limits;
  limits.max_entries = 2;
  Cache cache(limits, /*at_once=*/true);
  capture(cache, kA, 1, alive);
  capture(cache, kB, 2, alive);
  CHECK(find(cache, kA) == ReplayAction::kReplay);  // A is now the most recent
  capture(cache, kC, 3, alive);                     // B goes
  CHECK(*alive == 3 && cache.size() == 2 && cache.counts().evictions == 1);  // B retired
  cache.free_retired([](const Loop&) { return true; });
  CHECK(*alive == 2 && cache.retired() == 0);
  int id = 0;
  CHECK(find(cache, kA, 1, &id) == ReplayAction::kReplay && id == 1);
  CHECK(find(cache, kC, 1, &id) == ReplayAction::kReplay && id == 3);
  CHECK(find(cache, kB) == ReplayAction::kCapture);
}

void the_byte_limit_evicts_and_refuses_what_cannot_fit() {
  auto alive = std::make_shared<int>(0);
  ReplayLimits limits;
  limits.max_bytes = 100;
  Cache cache(limits, /*at_once=*/true);
  capture(cache, kA, 1, alive, 60);
  capture(cache, kB, 2, alive, 60);  // A goes: 120 > 100
  cache.free_retired([](const Loop&) { return true; });
  CHECK(cache.size() == 1 && cache.bytes() == 60 && *alive == 1);
  CHECK(find(cache, kA) == ReplayAction::kCapture);
  capture(cache, kC, 3, alive, 150);  // never fits: not kept, nothing evicted for it
  CHECK(cache.retired() == 1);        // just replayed: retired like an evicted entry
  cache.free_retired([](const Loop&) { return true; });
  CHECK(cache.size() == 1 && cache.bytes() == 60 && *alive == 1);
  CHECK(find(cache, kC) == ReplayAction::kCapture);
  CHECK(cache.counts().captures == 3 && cache.counts().evictions == 1);
}

void a_layer_that_keeps_changing_shape_stops_capturing() {
  auto alive = std::make_shared<int>(0);
  ReplayLimits limits;
  limits.max_captures_per_layer = 2;
  Cache cache(limits);
  for (const ReplayKey& key : {kA, kB}) {
    CHECK(find(cache, key, 7) == ReplayAction::kRunEagerly);
    CHECK(find(cache, key, 7) == ReplayAction::kCapture);
    capture(cache, key, 1, alive, 10, /*layer=*/7);
  }
  CHECK(find(cache, kC, 7) == ReplayAction::kRunEagerly);
  CHECK(find(cache, kC, 7) == ReplayAction::kRunEagerly);  // seen before, but capped
  CHECK(cache.counts().capped == 1);
  CHECK(find(cache, kA, 7) == ReplayAction::kReplay);  // what it has still replays
  CHECK(find(cache, kC, 8) == ReplayAction::kCapture);  // other layers are not held back
  cache.at_once = true;  // nor is a test's every call
  CHECK(find(cache, kD, 7) == ReplayAction::kCapture);
}

void a_shape_whose_capture_failed_runs_eagerly_after() {
  auto alive = std::make_shared<int>(0);
  ReplayLimits limits;
  Cache cache(limits, /*at_once=*/true);
  CHECK(find(cache, kA) == ReplayAction::kCapture);
  cache.capture_failed(kA);
  CHECK(find(cache, kA) == ReplayAction::kRunEagerly);
  CHECK(find(cache, kA) == ReplayAction::kRunEagerly);
  CHECK(find(cache, kB) == ReplayAction::kCapture);  // other shapes still capture
  CHECK(cache.counts().failed == 1 && cache.counts().misses == 4 && cache.size() == 0);
  cache.clear();  // a fresh start tries again
  CHECK(find(cache, kA) == ReplayAction::kCapture);
}

void the_memory_of_first_calls_is_bounded() {
  ReplayLimits limits;
  limits.max_entries = 1;  // remembers 4 * 1 + 4 = 8 keys
  Cache cache(limits);
  for (int64_t t = 0; t < 9; ++t) CHECK(find(cache, {t}) == ReplayAction::kRunEagerly);
  CHECK(find(cache, {0}) == ReplayAction::kRunEagerly);  // forgotten: the oldest of nine
  CHECK(find(cache, {0}) == ReplayAction::kCapture);
  CHECK(find(cache, {8}) == ReplayAction::kCapture);
}

void a_dropped_entry_lives_until_it_is_idle() {
  auto alive = std::make_shared<int>(0);
  ReplayLimits limits;
  limits.max_entries = 1;
  Cache cache(limits, /*at_once=*/true);
  capture(cache, kA, 1, alive);
  capture(cache, kB, 2, alive);  // A retired
  capture(cache, kC, 3, alive);  // B retired
  CHECK(*alive == 3 && cache.retired() == 2 && cache.size() == 1);
  cache.free_retired([](const Loop& loop) { return loop.id == 2; });  // A still busy
  CHECK(*alive == 2 && cache.retired() == 1);
  cache.free_retired([](const Loop&) { return false; });
  CHECK(*alive == 2 && cache.retired() == 1);
  cache.free_retired([](const Loop& loop) { return loop.id == 1; });
  CHECK(*alive == 1 && cache.retired() == 0);
  capture(cache, kD, 4, alive);  // C retired; clear destroys it, busy or not
  cache.clear();
  CHECK(*alive == 0 && cache.retired() == 0);
  // Past max_entries retired, the oldest go even while busy.
  capture(cache, kA, 5, alive);
  capture(cache, kB, 6, alive);  // 5 retired
  capture(cache, kC, 7, alive);  // 6 retired
  cache.free_retired([](const Loop&) { return false; });
  CHECK(*alive == 2 && cache.retired() == 1);
}

void clear_destroys_every_entry_and_keeps_the_counts() {
  auto alive = std::make_shared<int>(0);
  ReplayLimits limits;
  {
    Cache cache(limits, /*at_once=*/true);
    capture(cache, kA, 1, alive);
    capture(cache, kD, 2, alive);
    CHECK(*alive == 2);
    cache.clear();
    CHECK(*alive == 0 && cache.size() == 0 && cache.bytes() == 0);
    CHECK(cache.counts().captures == 2 && cache.counts().evictions == 0);
    capture(cache, kA, 3, alive);
  }
  CHECK(*alive == 0);  // the cache's own end destroys what it holds
}

}  // namespace

int main() {
  a_shape_is_captured_at_its_second_call_and_replayed_after();
  capturing_at_once_skips_the_eager_call();
  the_least_recently_used_entry_goes_first();
  the_byte_limit_evicts_and_refuses_what_cannot_fit();
  a_layer_that_keeps_changing_shape_stops_capturing();
  a_shape_whose_capture_failed_runs_eagerly_after();
  the_memory_of_first_calls_is_bounded();
  a_dropped_entry_lives_until_it_is_idle();
  clear_destroys_every_entry_and_keeps_the_counts();
  if (failures == 0) std::printf("all checks passed\n");
  return failures == 0 ? 0 : 1;
}
