// Graph replay of the CUDA per-step loop: a layer's T steps cost T times the host's
// launches and ATen dispatches eagerly (about 30 us a step on an H200 against a few us of
// kernels), one graph launch replayed. A loop is captured once per key on a side stream:
// its GEMMs work on buffers the captured loop owns (the state, and gh or dgh), its
// elementwise kernels reach the call's tensors through the addresses stored before each
// replay. Nothing is allocated during capture (where allocation is not allowed with the
// caching allocator off, as under compute-sanitizer).
#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <memory>

#include "../../cuda/gru_steps_cuda.h"
#include "../../cuda/stream_capture.h"
#include "../replay_switch.h"
#include "step_replay.h"

namespace gru_cuda {
namespace {

struct CapturedLoop final : ReplayEntry {
  at::Tensor state;      // the graph's h (dh): the call's is copied in before, out after
  at::Tensor workspace;  // gh (dgh)
  at::Tensor bases;      // the StepBases the steps add to their offsets
  at::cuda::CUDAGraph graph;
  at::cuda::CUDAEvent replayed;  // after the latest replay
  // The graph's memory goes back to the allocator with it: not while a replay runs.
  ~CapturedLoop() override { replayed.synchronize(); }
};

int64_t address_key(const at::Tensor& t) {
  return static_cast<int64_t>(reinterpret_cast<uintptr_t>(t.const_data_ptr()));
}

// Everything a captured loop depends on: the loop's kind and sizes, the state's dtype and
// device, the stream it replays on, the GEMMs' precision settings (frozen at capture),
// W_hh's addresses (read by the captured GEMMs) and the live rows of every step.
ReplayKey key_of(const StepLoop& loop, const c10::cuda::CUDAStream& stream) {
  const at::Context& context = at::globalContext();
  ReplayKey key{loop.backward,
                loop.save,
                loop.T,
                loop.N,
                loop.H,
                loop.D,
                static_cast<int64_t>(loop.state.scalar_type()),
                loop.state.get_device(),
                static_cast<int64_t>(stream.id()),
                static_cast<int64_t>(context.float32MatmulPrecision()),
                static_cast<int64_t>(context.allowFP16ReductionCuBLAS()),
                static_cast<int64_t>(context.allowBF16ReductionCuBLAS())};
  for (const at::Tensor& w : loop.w_hh) key.push_back(address_key(w));
  key.insert(key.end(), loop.batch_sizes.begin(), loop.batch_sizes.end());
  return key;
}

// The buffers a captured loop owns: its state, the step's gh (dgh) and the addresses.
int64_t loop_bytes(const StepLoop& loop) {
  return loop.D * loop.N * 4 * loop.H * loop.state.element_size() +
         static_cast<int64_t>(sizeof(StepBases));
}

std::unique_ptr<CapturedLoop> capture(const StepLoop& loop, const c10::cuda::CUDAStream& caller) {
  auto captured = std::make_unique<CapturedLoop>();
  captured->state = at::empty_like(loop.state);
  captured->workspace = at::empty({loop.D, loop.N, 3 * loop.H}, loop.state.options());
  captured->bases = at::empty({static_cast<int64_t>(sizeof(StepBases))},
                              loop.state.options().dtype(at::kByte));
  // A graph is captured on a stream other than the default; it runs nothing, so the
  // caller's stream need not wait for it.
  const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, caller.device_index());
  at::cuda::CUDAEvent ready;
  ready.record(caller);
  ready.block(side);
  const c10::cuda::CUDAStreamGuard on_side(side);
  (void)at::cuda::getCurrentCUDABlasHandle();  // cuBLAS's workspace for this stream, now
  captured->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
  try {
    loop.run(captured->state, captured->workspace,
             static_cast<const StepBases*>(captured->bases.const_data_ptr()));
  } catch (...) {
    try {
      captured->graph.capture_end();  // leaves the stream and the allocator as they were
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

}  // namespace

bool replay_steps_cuda(const StepLoop& loop) {
  const ReplayMode mode = replay_switch().get();
  if (mode == ReplayMode::kOff || loop.T == 0 || loop.N == 0 || loop.H == 0) return false;
  if (capturing(loop.state)) return false;  // the caller's graph takes our launches as they are
  const c10::cuda::CUDAStream caller = c10::cuda::getCurrentCUDAStream(loop.state.get_device());
  const ReplayKey key = key_of(loop, caller);
  const int64_t layer = address_key(loop.w_hh[0]);

  const std::lock_guard<std::mutex> lock(step_replay_mutex());
  StepReplayCache& cache = step_replay_cache();
  cache.limits().capture_on_first_call = mode == ReplayMode::kAlways;
  std::unique_ptr<ReplayEntry>* found = nullptr;
  switch (cache.find(key, layer, &found)) {
    case ReplayAction::kRunEagerly:
      return false;
    case ReplayAction::kReplay:
      replay(static_cast<CapturedLoop&>(**found), loop, caller);
      return true;
    case ReplayAction::kCapture:
      break;
  }
  std::unique_ptr<CapturedLoop> captured = capture(loop, caller);
  replay(*captured, loop, caller);
  cache.insert(key, layer, std::move(captured), loop_bytes(loop));
  return true;
}

}  // namespace gru_cuda
