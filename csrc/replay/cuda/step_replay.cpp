// Graph replay of the CUDA per-step loop: a layer's T steps cost T times the host's
// launches and ATen dispatches eagerly (about 30 us a step on an H200 against a few us of
// kernels), one graph launch replayed. A loop is captured once per key on a stream of its
// own: its GEMMs work on buffers the captured loop owns (the state, and gh or dgh), its
// elementwise kernels reach the call's tensors through the addresses stored before each
// replay.
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/util/Exception.h>

#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "../../cuda/stream_capture.h"
#include "../../gemm/cuda/cublas_calls.h"
#include "../../gemm/direct_gemm_switch.h"
#include "../replay_defaults.h"
#include "../replay_switch.h"
#include "step_replay.h"
#include "store_bases.h"

namespace gru_cuda {
namespace {

// ATen keeps cuBLAS's workspace per (handle, stream), and destroying a graph frees the
// workspace of the stream it was captured on: graphs sharing a stream would write to a
// freed workspace. Each captured loop captures on a stream of its own, taken from a pool
// and given back when its graph is gone: the next capture on it then reuses the freed
// workspace, where a new stream would leave it cached for a stream that no longer exists.
class CaptureStream {
 public:
  explicit CaptureStream(c10::DeviceIndex device) : device_(device) {
    const std::lock_guard<std::mutex> lock(pool_mutex());
    std::vector<cudaStream_t>& free = pool()[device];
    if (!free.empty()) {
      stream = free.back();
      free.pop_back();
      return;
    }
    const c10::cuda::CUDAGuard on_device(device);
    C10_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  }
  ~CaptureStream() {
    const std::lock_guard<std::mutex> lock(pool_mutex());
    pool()[device_].push_back(stream);
  }
  CaptureStream(const CaptureStream&) = delete;
  CaptureStream& operator=(const CaptureStream&) = delete;

  cudaStream_t stream = nullptr;

 private:
  // Never destroyed: streams outlive the captured loops, whatever the order at exit.
  static std::map<c10::DeviceIndex, std::vector<cudaStream_t>>& pool() {
    static auto* free = new std::map<c10::DeviceIndex, std::vector<cudaStream_t>>();
    return *free;
  }
  static std::mutex& pool_mutex() {
    static auto* mutex = new std::mutex();
    return *mutex;
  }
  c10::DeviceIndex device_;
};

// Members are destroyed in reverse order: the graph (and the workspace of its stream)
// before the stream.
struct CapturedLoop final : ReplayEntry {
  explicit CapturedLoop(c10::DeviceIndex device) : capture_stream(device) {}
  // The graph's memory goes back to the allocator with it: not while a replay runs. The
  // cache destroys only idle loops, but for clear().
  ~CapturedLoop() override {
    if (!idle()) C10_CUDA_CHECK_WARN(cudaEventSynchronize(replayed.event()));
  }
  bool idle() const override { return replayed.query(); }

  CaptureStream capture_stream;
  at::Tensor state;      // the graph's h (dh): the call's is copied in before, out after
  at::Tensor workspace;  // gh (dgh)
  at::Tensor bases;      // the StepBases the steps add to their offsets
  at::cuda::CUDAGraph graph;
  at::cuda::CUDAEvent replayed;  // after the latest replay
};

int64_t address_key(const at::Tensor& t) {
  return static_cast<int64_t>(reinterpret_cast<uintptr_t>(t.const_data_ptr()));
}

// Settings of newer torch versions that ATen's GEMMs read; 0 where torch has none.
template <typename Context>
auto fp16_accumulation(Context& context, int)
    -> decltype(static_cast<int64_t>(context.allowFP16AccumulationCuBLAS())) {
  return static_cast<int64_t>(context.allowFP16AccumulationCuBLAS());
}
template <typename Context>
int64_t fp16_accumulation(Context&, long) {
  return 0;
}
template <typename Context>
auto blas_backend(Context& context, int)
    -> decltype(static_cast<int64_t>(context.blasPreferredBackend())) {
  return static_cast<int64_t>(context.blasPreferredBackend());
}
template <typename Context>
int64_t blas_backend(Context&, long) {
  return 0;
}

// The settings frozen into the captured GEMMs. float32's matmul precision reads as an
// error when the legacy and the new precision APIs were mixed: then nothing replays.
bool precision_key(at::ScalarType dtype, ReplayKey& key) {
  at::Context& context = at::globalContext();
  key.push_back(static_cast<int64_t>(context.allowFP16ReductionCuBLAS()));
  key.push_back(static_cast<int64_t>(context.allowBF16ReductionCuBLAS()));
  key.push_back(fp16_accumulation(context, 0));
  key.push_back(blas_backend(context, 0));
  // The direct GEMMs are captured as they were called: whether they ran, and float32's
  // TF32 setting for them.
  const bool direct = direct_gemm_enabled().load();
  key.push_back(static_cast<int64_t>(direct));
  if (dtype != at::kFloat) return true;
  try {
    key.push_back(static_cast<int64_t>(context.float32MatmulPrecision()));
    if (direct) key.push_back(static_cast<int64_t>(rnn_allows_tf32()));
  } catch (const c10::Error&) {
    return false;
  }
  return true;
}

// Everything a captured loop depends on: the loop's kind and sizes, the state's dtype and
// device, the stream it replays on, the GEMMs' precision settings, W_hh's addresses (read
// by the captured GEMMs) and the live rows of every step. False: do not replay.
bool key_of(const StepLoop& loop, const c10::cuda::CUDAStream& stream, ReplayKey& key) {
  key = {loop.backward,
         loop.save,
         loop.T,
         loop.N,
         loop.H,
         loop.D,
         static_cast<int64_t>(loop.state.scalar_type()),
         loop.state.get_device(),
         static_cast<int64_t>(stream.id())};
  for (const at::Tensor& w : loop.w_hh) key.push_back(address_key(w));
  key.insert(key.end(), loop.batch_sizes.begin(), loop.batch_sizes.end());
  return precision_key(loop.state.scalar_type(), key);
}

// What a captured loop holds: its state, gh (dgh), the addresses, and cuBLAS's workspace
// for its stream.
int64_t loop_bytes(const StepLoop& loop) {
  return loop.D * loop.N * 4 * loop.H * loop.state.element_size() +
         static_cast<int64_t>(sizeof(StepBases)) +
         static_cast<int64_t>(at::cuda::getChosenWorkspaceSize());
}

std::unique_ptr<CapturedLoop> capture(const StepLoop& loop, const c10::cuda::CUDAStream& caller) {
  auto captured = std::make_unique<CapturedLoop>(caller.device_index());
  captured->state = at::empty_like(loop.state);
  captured->workspace = at::empty({loop.D, loop.N, 3 * loop.H}, loop.state.options());
  captured->bases = at::empty({static_cast<int64_t>(sizeof(StepBases))},
                              loop.state.options().dtype(at::kByte));
  // Capture runs nothing, so the caller's stream need not wait for it.
  const c10::cuda::CUDAStreamGuard on_own_stream(c10::cuda::getStreamFromExternal(
      captured->capture_stream.stream, caller.device_index()));
  (void)at::cuda::getCurrentCUDABlasHandle();  // cuBLAS's workspace for it, before capture
  captured->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
  try {
    loop.run(captured->state, captured->workspace,
             static_cast<const StepBases*>(captured->bases.const_data_ptr()));
  } catch (...) {
    try {
      captured->graph.capture_end();  // ends the capture; the error is the one above
    } catch (...) {
    }
    throw;
  }
  captured->graph.capture_end();
  return captured;
}

// On the caller's stream: the call's addresses and state in, the loop, the state out.
void replay(CapturedLoop& captured, const StepLoop& loop, const c10::cuda::CUDAStream& caller) {
  store_step_bases_cuda(loop.addresses, captured.bases.mutable_data_ptr());
  captured.state.copy_(loop.state);
  captured.graph.replay();
  loop.state.copy_(captured.state);
  captured.replayed.record(caller);
}

// Destroys the evicted loops whose last replay is done; at every call, replayed or not,
// so that they go even once replay is off.
void free_idle_retired() {
  const std::lock_guard<std::mutex> lock(step_replay_mutex());
  StepReplayCache& cache = step_replay_cache();
  if (cache.retired() == 0) return;
  // Event queries and graph destruction, allowed even while another thread captures.
  const c10::cuda::CUDAStreamCaptureModeGuard relaxed(cudaStreamCaptureModeRelaxed);
  cache.free_retired([](const std::unique_ptr<ReplayEntry>& loop) { return loop->idle(); });
}

}  // namespace

bool replay_steps_cuda(const StepLoop& loop) {
  if (capturing(loop.state)) return false;  // the caller's graph takes our launches as they are
  free_idle_retired();
  const ReplayMode mode = replay_switch().get();
  if (mode == ReplayMode::kOff || loop.T == 0 || loop.N == 0 || loop.H == 0) return false;
  if (mode == ReplayMode::kAuto &&
      replay_default(c10::toString(loop.state.scalar_type()), loop.H, loop.N, loop.D) ==
          nullptr) {
    return false;
  }
  const c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream(loop.state.get_device());
  ReplayKey key;
  if (!key_of(loop, caller, key)) return false;
  // A layer's forward and backward loops are counted apart against its capture limit.
  const int64_t layer = address_key(loop.w_hh[0]) + (loop.backward ? 1 : 0);

  const std::lock_guard<std::mutex> lock(step_replay_mutex());
  StepReplayCache& cache = step_replay_cache();
  std::unique_ptr<ReplayEntry>* found = nullptr;
  switch (cache.find(key, layer, &found, /*capture_at_once=*/mode == ReplayMode::kAlways)) {
    case ReplayAction::kRunEagerly:
      return false;
    case ReplayAction::kReplay:
      replay(static_cast<CapturedLoop&>(**found), loop, caller);
      return true;
    case ReplayAction::kCapture:
      break;
  }
  std::unique_ptr<CapturedLoop> captured;
  try {
    captured = capture(loop, caller);
  } catch (const std::exception& e) {
    // Nothing ran: the loop can still run eagerly, once the failed launch's error is
    // cleared. "always" (tests, benchmarks) must know that it did not replay, so there
    // the error stands.
    (void)cudaGetLastError();
    cache.capture_failed(key);
    if (mode == ReplayMode::kAlways) throw;
    TORCH_WARN_ONCE("gru_cuda: capturing a layer's steps into a CUDA graph failed, so that "
                    "shape runs eagerly: ", e.what());
    return false;
  }
  replay(*captured, loop, caller);
  cache.insert(key, layer, std::move(captured), loop_bytes(loop));
  return true;
}

}  // namespace gru_cuda
