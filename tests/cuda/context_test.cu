// The CUDA context's graph cache (context.cuh): a server meets a new utterance length with nearly
// every request, so a context keeps the most recently used graphs only, and counts a bounded number
// of shapes, while a replayed graph still does what it recorded.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "cuda/context.cuh"
#include "cuda/require_gpu.h"

namespace ds2rt::test {
namespace {

using detail::cuda::allocateDevice;
using detail::cuda::CudaDeviceContext;
using detail::cuda::DeviceMemory;

// Runs `shape` on the context: a memset of its number into `word`, then reads the word back.
uint8_t runShape(CudaDeviceContext& ctx, const DeviceMemory& word, const std::string& shape, int value) {
  ctx.execute(shape, [&] { DS2RT_CUDA(cudaMemsetAsync(word.get(), value, 1, ctx.stream())); });
  uint8_t back = 0;
  DS2RT_CUDA(cudaMemcpy(&back, word.get(), 1, cudaMemcpyDeviceToHost));
  return back;
}

TEST(CudaContext, KeepsTheMostRecentlyUsedGraphs) {
  REQUIRE_GPU();
  CudaDeviceContext ctx(ContextOptions{.cuda_graphs = true}, DataType::kFloat32);
  const DeviceMemory word = allocateDevice(1);
  const int shapes = static_cast<int>(CudaDeviceContext::kMaxGraphs) + 20;
  for (int shape = 0; shape < shapes; ++shape)
    for (int run = 0; run < 3; ++run)  // eager, recorded, replayed
      ASSERT_EQ(runShape(ctx, word, "shape " + std::to_string(shape), shape), shape) << shape << " run " << run;
  EXPECT_EQ(ctx.recordedGraphs(), CudaDeviceContext::kMaxGraphs);
  // The oldest shape was dropped: it records a graph again (dropping the next oldest); the newest
  // still replays its own.
  EXPECT_EQ(runShape(ctx, word, "shape 0", 0), 0);
  EXPECT_EQ(runShape(ctx, word, "shape 0", 0), 0);
  EXPECT_EQ(runShape(ctx, word, "shape " + std::to_string(shapes - 1), shapes - 1), shapes - 1);
  EXPECT_EQ(ctx.recordedGraphs(), CudaDeviceContext::kMaxGraphs);

  // Shapes met once each: their counts stay bounded, the recorded graphs' survive.
  for (int shape = 0; shape < 3 * static_cast<int>(CudaDeviceContext::kMaxCountedShapes); ++shape)
    runShape(ctx, word, "once " + std::to_string(shape), 7);
  EXPECT_LE(ctx.countedShapes(), CudaDeviceContext::kMaxCountedShapes);
  EXPECT_EQ(ctx.recordedGraphs(), CudaDeviceContext::kMaxGraphs);
  EXPECT_EQ(runShape(ctx, word, "shape " + std::to_string(shapes - 1), shapes - 1), shapes - 1);
}

}  // namespace
}  // namespace ds2rt::test
