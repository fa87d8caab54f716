// The bookkeeping of the per-step path's graph cache (cuda/step_replay.cpp): which
// captured time loops are kept, which goes when the cache is full (least recently used
// first), when a shape is worth capturing and when a layer stops capturing. Plain C++
// with no CUDA or torch, so that CPU builds test it.
#pragma once

#include <algorithm>
#include <cstdint>
#include <list>
#include <map>
#include <utility>
#include <vector>

namespace gru_cuda {

struct ReplayLimits {
  int64_t max_entries = 16;
  // The buffers the captured loops own, cuBLAS's workspace for each one's stream
  // included (ATen's size for the device: megabytes).
  int64_t max_bytes = int64_t{1} << 30;
  // A layer whose shapes keep changing (sequence lengths of every batch, say) would
  // capture on every call and replay little: after this many captures it runs eagerly.
  int64_t max_captures_per_layer = 8;
};

// Since the cache was made: calls replayed (hits), calls whose shape had no graph
// (misses, of which captures captured one), graphs dropped to stay within the limits,
// misses a layer's capture limit kept eager, and captures that failed (their shapes run
// eagerly from then on).
struct ReplayCounts {
  int64_t hits = 0, misses = 0, captures = 0, evictions = 0, capped = 0, failed = 0;
};

// What identifies a captured loop: shape, dtype, device, stream, the weights' addresses...
using ReplayKey = std::vector<int64_t>;

enum class ReplayAction { kRunEagerly, kCapture, kReplay };

template <typename Entry>
class ReplayCache {
 public:
  explicit ReplayCache(ReplayLimits limits) : limits_(limits) {}

  // What to do for a call with this key on this layer; with kReplay, the entry to replay
  // (now the most recently used). A first miss only remembers the key: a shape seen once
  // is often never seen again, and capturing costs more than a call. capture_at_once
  // (tests, benchmarks) captures every miss at once, whatever the layer's count.
  ReplayAction find(const ReplayKey& key, int64_t layer, Entry** entry,
                    bool capture_at_once = false) {
    *entry = nullptr;
    const auto found = index_.find(key);
    if (found != index_.end()) {
      ++counts_.hits;
      slots_.splice(slots_.begin(), slots_, found->second);
      *entry = &found->second->entry;
      return ReplayAction::kReplay;
    }
    ++counts_.misses;
    if (contains(failed_, key)) return ReplayAction::kRunEagerly;
    if (capture_at_once) return ReplayAction::kCapture;
    if (!seen_before(key)) return ReplayAction::kRunEagerly;
    if (layer_captures(layer) >= limits_.max_captures_per_layer) {
      ++counts_.capped;
      return ReplayAction::kRunEagerly;
    }
    return ReplayAction::kCapture;
  }

  // Keeps a loop captured for key (after find said kCapture), dropping the least recently
  // used ones while over the limits; an entry larger than the byte limit is not kept.
  // What is dropped is retired, not destroyed: see free_retired.
  void insert(const ReplayKey& key, int64_t layer, Entry entry, int64_t bytes) {
    ++counts_.captures;
    ++layer_captures(layer);
    seen_.remove(key);
    if (bytes > limits_.max_bytes || limits_.max_entries < 1) {
      retired_.push_back(std::move(entry));
      return;
    }
    while (!slots_.empty() && (static_cast<int64_t>(slots_.size()) >= limits_.max_entries ||
                               bytes_ + bytes > limits_.max_bytes)) {
      drop(std::prev(slots_.end()));
    }
    slots_.push_front(Slot{key, std::move(entry), bytes});
    index_.emplace(key, slots_.begin());
    bytes_ += bytes;
  }

  // Destroys the dropped entries that idle(entry) says are done with (a graph whose last
  // replay has finished on the GPU): destroying one earlier would wait for it, stalling
  // the host at every eviction. The others wait for a later call; past max_entries of
  // them the oldest go anyway (waiting), so that what they hold stays bounded.
  template <typename Idle>
  void free_retired(Idle idle) {
    retired_.remove_if([&](const Entry& entry) { return idle(entry); });
    while (static_cast<int64_t>(retired_.size()) > std::max<int64_t>(limits_.max_entries, 1)) {
      retired_.pop_front();
    }
  }
  int64_t retired() const { return static_cast<int64_t>(retired_.size()); }

  // After find said kCapture and the capture failed: the key runs eagerly from now on.
  void capture_failed(const ReplayKey& key) {
    ++counts_.failed;
    seen_.remove(key);
    remember(failed_, key);
  }

  // Destroys every entry, retired ones too (not counted as evictions), and forgets what
  // the cache remembers.
  void clear() {
    retired_.clear();
    slots_.clear();
    index_.clear();
    bytes_ = 0;
    seen_.clear();
    failed_.clear();
    captures_per_layer_.clear();
  }

  const ReplayCounts& counts() const { return counts_; }
  int64_t size() const { return static_cast<int64_t>(slots_.size()); }
  int64_t bytes() const { return bytes_; }

 private:
  struct Slot {
    ReplayKey key;
    Entry entry;
    int64_t bytes;
  };
  using SlotIt = typename std::list<Slot>::iterator;

  void drop(SlotIt slot) {
    ++counts_.evictions;
    bytes_ -= slot->bytes;
    index_.erase(slot->key);
    retired_.push_back(std::move(slot->entry));
    slots_.erase(slot);
  }

  static bool contains(const std::list<ReplayKey>& keys, const ReplayKey& key) {
    for (const ReplayKey& k : keys) {
      if (k == key) return true;
    }
    return false;
  }

  // Remembers key, most recent first; the oldest keys are forgotten beyond a bound.
  void remember(std::list<ReplayKey>& keys, const ReplayKey& key) {
    keys.push_front(key);
    if (static_cast<int64_t>(keys.size()) > 4 * limits_.max_entries + 4) keys.pop_back();
  }

  // Whether key missed before; remembers it if not.
  bool seen_before(const ReplayKey& key) {
    if (contains(seen_, key)) return true;
    remember(seen_, key);
    return false;
  }

  // Layers are named by an address, which a freed layer's successor may reuse: the
  // table is bounded by starting afresh when it grows large.
  int64_t& layer_captures(int64_t layer) {
    if (captures_per_layer_.size() > 1024 && captures_per_layer_.count(layer) == 0) {
      captures_per_layer_.clear();
    }
    return captures_per_layer_[layer];
  }

  ReplayLimits limits_;
  ReplayCounts counts_;
  std::list<Slot> slots_;  // most recently used first
  std::list<Entry> retired_;
  std::map<ReplayKey, SlotIt> index_;
  std::list<ReplayKey> seen_;    // keys that missed once
  std::list<ReplayKey> failed_;  // keys whose capture failed
  std::map<int64_t, int64_t> captures_per_layer_;
  int64_t bytes_ = 0;
};

}  // namespace gru_cuda
