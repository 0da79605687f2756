// Probe, not part of ds2rt: the fp32 fused recurrent step (src/cpu/rnn_cell_avx512.cpp) of one 1024-unit
// direction, one thread per direction as a bidirectional layer runs it, against stream_read.cpp's read
// rate: at few rows the step reads W_h (LSTM 16 MiB) once and is bound by how fast a core reads it.
//   BUILD_DIR=build-cpu DS2RT_WITH_CUDA=OFF scripts/build.sh
//   g++ -O3 -march=native -fopenmp -std=c++20 -Isrc -Iinclude bench/cpu_probes/recurrent_step.cpp \
//       build-cpu/libds2rt.a -ldnnl -lfftw3f -o /tmp/recurrent_step && /tmp/recurrent_step [units [fp32|int8|bf16]]
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "cpu/rnn_cell.h"
#include "cpu/rnn_step_matmul.h"

using namespace ds2rt;
using namespace ds2rt::detail::cpu;

int main(int argc, char** argv) {
  const int64_t hidden = argc > 1 ? std::atoll(argv[1]) : 1024, steps = 200;  // units per direction
  // int8: the VNNI step; bf16: the vdpbf16ps one; fp32x3: fp32 as three bf16 products on AMX (amx_gemm.h)
  const std::string precision = argc > 2 ? argv[2] : "fp32";
  const bool int8 = precision == "int8", bf16 = precision == "bf16", x3 = precision == "fp32x3";
  std::printf("%s\n", precision.c_str());
  std::printf("| cell | rows | threads (one direction each) | ms per step | weight GB/s per thread | GFLOP/s total |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (RNNCell cell : {RNNCell::kLSTM, RNNCell::kGRU})
    for (int64_t rows : {1, 4, 8, 16, 32})
      for (int threads : {1, 2}) {
        const int gates = cell == RNNCell::kLSTM ? 4 : 3;
        double seconds = 0;
#pragma omp parallel num_threads(threads)
        {
          std::mt19937 rng(omp_get_thread_num());
          std::normal_distribution<float> normal(0.0f, 0.03f);
          std::vector<float> w(gates * hidden * hidden), x(rows * gates * hidden), bias(gates * hidden, 0.1f),
              hb(hidden, 0.0f), h0(rows * hidden, 0.0f), h1(rows * hidden), c(rows * hidden, 0.0f), y(rows * hidden), interleaved(rows * hidden);
          for (float& v : w) v = normal(rng);
          for (float& v : x) v = normal(rng);
          const PackedRecurrent packed = packRecurrent(w.data(), gates, hidden);
          std::vector<int8_t> q(w.size());
          std::vector<float> row_scale(gates * hidden), h_scale(rows);
          quantizeRows(w.data(), gates * hidden, hidden, q.data(), row_scale.data());
          const PackedRecurrentInt8 packed8 = packRecurrentInt8(q.data(), row_scale.data(), gates, hidden);
          std::vector<uint8_t> h_quantized(rows * packed8.depth);
          const PackedRecurrentBF16 packed16 = packRecurrentBF16(w.data(), gates, hidden);
          std::vector<uint16_t> h_bf16(rows * packed16.depth);
          const MatmulRecurrent split = x3 ? MatmulRecurrent(w.data(), gates, hidden, true) : MatmulRecurrent();
          MatmulRecurrent::State split_state;
          std::vector<const float*> xs(rows);
          std::vector<float*> ys(rows);
          for (int64_t r = 0; r < rows; ++r) xs[r] = x.data() + r * gates * hidden, ys[r] = y.data() + r * hidden;
          StepArgs a;
          a.cell = cell, a.hidden = hidden, a.rows = rows, a.c = c.data(), a.x = xs.data(), a.y = ys.data();
          a.bias = bias.data(), a.hidden_bias = hb.data(), a.h_interleaved = interleaved.data();
          a.block_begin = 0, a.block_end = packed.blocks;
          a.h_quantized = h_quantized.data(), a.h_scale = h_scale.data(), a.h_bf16 = h_bf16.data();
          auto run = [&](int64_t n) {
            for (int64_t s = 0; s < n; ++s) {
              a.h_prev = s % 2 ? h1.data() : h0.data();
              a.h_next = s % 2 ? h0.data() : h1.data();
              if (x3) split.step(split_state, a, nullptr);
              else if (int8) recurrentStepInt8(packed8, a);
              else if (bf16) recurrentStepBF16(packed16, a);
              else recurrentStep(packed, a);
            }
          };
          run(10);
#pragma omp barrier
          const auto t0 = std::chrono::steady_clock::now();
          run(steps);
#pragma omp barrier
#pragma omp master
          seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        }
        const double per_step = seconds / steps, bytes = (int8 ? 1.0 : bf16 ? 2.0 : 4.0) * gates * hidden * hidden;
        std::printf("| %s | %lld | %d | %.3f | %.1f | %.0f |\n", cell == RNNCell::kLSTM ? "LSTM" : "GRU",
                    static_cast<long long>(rows), threads, per_step * 1e3, bytes / per_step / 1e9,
                    threads * 2.0 * rows * gates * hidden * hidden / per_step / 1e9);
      }
}
