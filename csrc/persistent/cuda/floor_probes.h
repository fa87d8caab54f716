// Device probes for the floor of a persistent step (floor_probes.cu): barrier costs and
// arithmetic rates, measured in the run that times the kernels.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace gru_cuda {

// Their names in this order, for the probe op.
enum class FloorProbe : int64_t {
  kGridBarrier = 0,   // µs a grid barrier, one block an SM
  kClusterBarrier8,   // µs a cluster barrier, one cluster of 8
  kClusterBarrier16,  // of 16
  kFfma,              // FP32 FMA TFLOP/s of the device
  kMmaBf16,           // mma.sync bfloat16 TFLOP/s (float accumulation)
  kMmaTf32,           // mma.sync TF32 TFLOP/s
};
constexpr const char* kFloorProbeNames =
    "grid_barrier_us,cluster8_barrier_us,cluster16_barrier_us,ffma_tflops,mma_bf16_tflops,"
    "mma_tf32_tflops";

// Runs `iterations` of the probe on stream and sets value; sink: a float the kernels may
// write (never do). sms: the device's SMs.
cudaError_t run_floor_probe(FloorProbe probe, int iterations, int sms, float* sink,
                            cudaStream_t stream, double& value);

}  // namespace gru_cuda
