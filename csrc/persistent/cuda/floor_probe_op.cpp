// The floor probes (floor_probes.cu) as an op for the GPU check's floor report: the
// probe's name (one of kFloorProbeNames) and iterations in, its value out, on the current
// device and stream.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <sstream>
#include <string>

#include "floor_probes.h"

namespace gru_cuda {
namespace {

double floor_probe_op(const std::string& name, int64_t iterations) {
  std::istringstream names(kFloorProbeNames);
  std::string known;
  int64_t index = 0;
  while (std::getline(names, known, ',') && known != name) ++index;
  TORCH_CHECK(known == name, "gru_cuda: no floor probe '", name, "'; known: ",
              kFloorProbeNames);
  TORCH_CHECK(iterations > 0 && iterations < (int64_t{1} << 30),
              "gru_cuda: a floor probe's iterations must be positive, got ", iterations);
  const int device = c10::cuda::current_device();
  int sms = 0, major = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  const auto probe = static_cast<FloorProbe>(index);
  TORCH_CHECK(major >= 9 || (probe != FloorProbe::kClusterBarrier8 &&
                             probe != FloorProbe::kClusterBarrier16),
              "gru_cuda: the floor probe '", name, "' needs thread-block clusters (sm_90 on)");
  TORCH_CHECK(major >= 8 || (probe != FloorProbe::kMmaBf16 && probe != FloorProbe::kMmaTf32),
              "gru_cuda: the floor probe '", name, "' needs mma.sync for these types (sm_80 on)");
  const at::Tensor sink = at::empty({1}, at::TensorOptions().device(at::kCUDA, device));
  double value = 0.0;
  const cudaError_t err = run_floor_probe(
      probe, static_cast<int>(iterations), sms,
      sink.mutable_data_ptr<float>(), c10::cuda::getCurrentCUDAStream(device), value);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // a refused launch (no clusters here) must not outlive this
    TORCH_CHECK(false, "gru_cuda: the floor probe '", name, "' failed: ",
                cudaGetErrorName(err), " (", cudaGetErrorString(err), ")");
  }
  return value;
}

std::string floor_probe_names_op() { return kFloorProbeNames; }

}  // namespace

TORCH_LIBRARY_FRAGMENT(gru_cuda, m) {
  m.def("floor_probe(str name, int iterations) -> float", &floor_probe_op);
  m.def("floor_probe_names() -> str", &floor_probe_names_op);
}

}  // namespace gru_cuda
