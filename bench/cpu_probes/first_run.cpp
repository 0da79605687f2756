// Probe, not part of ds2rt: the CPU engine's build time and its first three runs (1 x 2 s of random
// features) for a model file, through the public API. Built against two libds2rt.a, it showed the
// FFT convolution's filter spectra moving from the first run to the build (bench/RESULTS.md).
//   g++ -O2 -std=c++20 -Iinclude bench/cpu_probes/first_run.cpp build-cpu/libds2rt.a -ldnnl -fopenmp -lz \
//     -lsndfile -lsoxr -lfftw3f -lzip -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5 -lonnx_proto -lprotobuf \
//     -o /tmp/first_run && OMP_NUM_THREADS=2 /tmp/first_run models/ds2rt-en-bigru.safetensors
// (a build-cpu with the CUDA backend also needs -L/usr/local/cuda/lib64 -lcudart -lcublasLt -lcublas -lcudnn)
#include <chrono>
#include <cstdio>
#include <random>

#include "ds2rt/builder.h"
#include "ds2rt/engine.h"
#include "ds2rt/importers.h"

using Clock = std::chrono::steady_clock;

static double msSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: first_run MODEL\n");
    return 2;
  }
  using namespace ds2rt;
  const NetworkDefinition net = importNetwork(argv[1]).network;
  const auto build_start = Clock::now();
  const Engine engine = Builder().build(net);
  std::printf("build %.1f ms\n", msSince(build_start));
  auto context = engine.createContext();
  const int64_t bins = engine.tensorShape("features")[2], frames = 200;
  HostTensor features(DataType::kFloat32, {1, 1, bins, frames});
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < bins * frames; ++i) features.mutableData<float>()[i] = normal(rng);
  const auto lengths = HostTensor::fromInts({1}, {static_cast<int32_t>(frames)});
  for (int run = 1; run <= 3; ++run) {
    const auto start = Clock::now();
    context.run({{"features", features}, {"lengths", lengths}});
    std::printf("run %d %.1f ms\n", run, msSince(start));
  }
}
