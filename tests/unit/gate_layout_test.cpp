// Gate layouts of recurrent weights: every framework's block order (as documented in
// include/ds2rt/weights.h, written out independently here) maps onto the canonical one.
#include <gmock/gmock.h>

#include "ds2rt/error.h"
#include "ds2rt/weights.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

using testing::HasSubstr;

constexpr GateLayout kAllLayouts[] = {GateLayout::kCanonical, GateLayout::kPyTorch, GateLayout::kCuDNN,
                                      GateLayout::kONNX,      GateLayout::kKeras,   GateLayout::kTF1};
constexpr RNNCell kAllCells[] = {RNNCell::kRNNTanh, RNNCell::kRNNRelu, RNNCell::kLSTM, RNNCell::kGRU};

// For each block of `layout` (in storage order), the index of that gate in the canonical order
// (LSTM i,f,g,o; GRU r,z,n), transcribed from the table in weights.h.
std::vector<int> canonicalIndexOfBlocks(RNNCell cell, GateLayout layout) {
  if (cell == RNNCell::kRNNTanh || cell == RNNCell::kRNNRelu) return {0};
  if (cell == RNNCell::kLSTM) {
    switch (layout) {
      case GateLayout::kONNX: return {0, 3, 1, 2};  // i, o, f, c
      case GateLayout::kTF1: return {0, 2, 1, 3};   // i, j, f, o
      default: return {0, 1, 2, 3};                 // i, f, g/c, o (PyTorch, cuDNN, Keras)
    }
  }
  switch (layout) {  // GRU
    case GateLayout::kONNX:
    case GateLayout::kKeras: return {1, 0, 2};  // z, r, h
    default: return {0, 1, 2};                   // r, z, n
  }
}

bool supported(RNNCell cell, GateLayout layout) { return !(cell == RNNCell::kGRU && layout == GateLayout::kTF1); }

std::string pairName(RNNCell cell, GateLayout layout) { return cat(toString(cell), "/", toString(layout)); }

// Value of element (row r within the gate block, column c) of canonical gate g.
float code(int gate, int64_t r, int64_t c) { return static_cast<float>(gate * 1000 + r * 10 + c); }

constexpr int64_t kHidden = 3, kCols = 4;

// A framework-layout weight (G*H x cols): block k holds canonical gate canonicalIndexOfBlocks[k].
HostTensor frameworkWeight(RNNCell cell, GateLayout layout) {
  const auto blocks = canonicalIndexOfBlocks(cell, layout);
  const int64_t g = static_cast<int64_t>(blocks.size());
  HostTensor t(DataType::kFloat32, {g * kHidden, kCols});
  for (int64_t k = 0; k < g; ++k)
    for (int64_t r = 0; r < kHidden; ++r)
      for (int64_t c = 0; c < kCols; ++c) t.mutableData<float>()[(k * kHidden + r) * kCols + c] = code(blocks[k], r, c);
  return t;
}

HostTensor canonicalWeight(RNNCell cell) {
  const int64_t g = gateCount(cell);
  HostTensor t(DataType::kFloat32, {g * kHidden, kCols});
  for (int64_t k = 0; k < g; ++k)
    for (int64_t r = 0; r < kHidden; ++r)
      for (int64_t c = 0; c < kCols; ++c) t.mutableData<float>()[(k * kHidden + r) * kCols + c] = code(static_cast<int>(k), r, c);
  return t;
}

TEST(GateLayout, GateCounts) {
  EXPECT_EQ(gateCount(RNNCell::kRNNTanh), 1);
  EXPECT_EQ(gateCount(RNNCell::kRNNRelu), 1);
  EXPECT_EQ(gateCount(RNNCell::kLSTM), 4);
  EXPECT_EQ(gateCount(RNNCell::kGRU), 3);
}

TEST(GateLayout, GateOrdersMatchTheDocumentedTable) {
  using G = Gate;
  const std::vector<Gate> lstm{G::kInput, G::kForget, G::kCell, G::kOutput};
  const std::vector<Gate> gru{G::kReset, G::kUpdate, G::kHidden};
  for (GateLayout layout : kAllLayouts) {
    if (!supported(RNNCell::kGRU, layout)) continue;
    std::vector<Gate> expect_lstm, expect_gru;
    for (int i : canonicalIndexOfBlocks(RNNCell::kLSTM, layout)) expect_lstm.push_back(lstm[i]);
    for (int i : canonicalIndexOfBlocks(RNNCell::kGRU, layout)) expect_gru.push_back(gru[i]);
    EXPECT_EQ(gateOrder(RNNCell::kLSTM, layout), expect_lstm) << toString(layout);
    EXPECT_EQ(gateOrder(RNNCell::kGRU, layout), expect_gru) << toString(layout);
  }
  EXPECT_EQ(gateOrder(RNNCell::kLSTM, GateLayout::kTF1), (std::vector<Gate>{G::kInput, G::kCell, G::kForget, G::kOutput}));
  EXPECT_EQ(gateOrder(RNNCell::kLSTM, GateLayout::kONNX), (std::vector<Gate>{G::kInput, G::kOutput, G::kForget, G::kCell}));
  EXPECT_EQ(gateOrder(RNNCell::kGRU, GateLayout::kKeras), (std::vector<Gate>{G::kUpdate, G::kReset, G::kHidden}));
}

TEST(GateLayout, ToCanonicalPermutesBlocksOfWeights) {
  for (RNNCell cell : kAllCells)
    for (GateLayout layout : kAllLayouts) {
      if (!supported(cell, layout)) continue;
      const HostTensor out = toCanonicalGates(frameworkWeight(cell, layout), cell, layout);
      const HostTensor expected = canonicalWeight(cell);
      ASSERT_EQ(out.shape(), expected.shape()) << pairName(cell, layout);
      EXPECT_EQ(toVector(out), toVector(expected)) << pairName(cell, layout);
    }
}

TEST(GateLayout, FromCanonicalPermutesBlocksOfWeights) {
  for (RNNCell cell : kAllCells)
    for (GateLayout layout : kAllLayouts) {
      if (!supported(cell, layout)) continue;
      const HostTensor out = fromCanonicalGates(canonicalWeight(cell), cell, layout);
      EXPECT_EQ(toVector(out), toVector(frameworkWeight(cell, layout))) << pairName(cell, layout);
    }
}

TEST(GateLayout, ToCanonicalPermutesBiases) {
  for (RNNCell cell : kAllCells)
    for (GateLayout layout : kAllLayouts) {
      if (!supported(cell, layout)) continue;
      const auto blocks = canonicalIndexOfBlocks(cell, layout);
      std::vector<float> framework, canonical;
      for (int k : blocks)
        for (int64_t r = 0; r < kHidden; ++r) framework.push_back(code(k, r, 0));
      for (int k = 0; k < gateCount(cell); ++k)
        for (int64_t r = 0; r < kHidden; ++r) canonical.push_back(code(k, r, 0));
      const int64_t gh = static_cast<int64_t>(framework.size());
      const HostTensor out = toCanonicalGates(HostTensor::fromFloats({gh}, framework), cell, layout);
      ASSERT_EQ(out.shape(), (Shape{gh})) << pairName(cell, layout);
      EXPECT_EQ(toVector(out), canonical) << pairName(cell, layout);
    }
}

TEST(GateLayout, KerasKernelAlongAxisOne) {
  // A Keras kernel is input x G*H: the gate blocks run along the columns.
  for (RNNCell cell : kAllCells)
    for (GateLayout layout : kAllLayouts) {
      if (!supported(cell, layout)) continue;
      const HostTensor kernel = transpose2d(frameworkWeight(cell, layout));  // cols x G*H
      ASSERT_EQ(kernel.dim(0), kCols);
      const HostTensor out = toCanonicalGates(kernel, cell, layout, /*axis=*/1);
      EXPECT_EQ(toVector(out), toVector(transpose2d(canonicalWeight(cell)))) << pairName(cell, layout);
      const HostTensor back = fromCanonicalGates(out, cell, layout, /*axis=*/1);
      EXPECT_EQ(toVector(back), toVector(kernel)) << pairName(cell, layout);
    }
}

TEST(GateLayout, RoundTripsAreIdentity) {
  std::mt19937 rng(11);
  for (RNNCell cell : kAllCells)
    for (GateLayout layout : kAllLayouts) {
      if (!supported(cell, layout)) continue;
      const int64_t gh = gateCount(cell) * 5;
      for (const Shape& shape : {Shape{gh, 7}, Shape{gh}}) {
        const HostTensor x = randomTensor(shape, rng);
        EXPECT_EQ(toVector(fromCanonicalGates(toCanonicalGates(x, cell, layout), cell, layout)), toVector(x))
            << pairName(cell, layout);
        EXPECT_EQ(toVector(toCanonicalGates(fromCanonicalGates(x, cell, layout), cell, layout)), toVector(x))
            << pairName(cell, layout);
      }
      const HostTensor kernel = randomTensor({6, gh}, rng);
      EXPECT_EQ(toVector(fromCanonicalGates(toCanonicalGates(kernel, cell, layout, 1), cell, layout, 1)),
                toVector(kernel))
          << pairName(cell, layout);
    }
}

TEST(GateLayout, NonTrivialLayoutsActuallyMoveBlocks) {
  // Guards the tests above against a permutation that happens to be the identity.
  std::mt19937 rng(3);
  const HostTensor x = randomTensor({12, 2}, rng);
  EXPECT_NE(toVector(toCanonicalGates(x, RNNCell::kLSTM, GateLayout::kONNX)), toVector(x));
  EXPECT_NE(toVector(toCanonicalGates(x, RNNCell::kLSTM, GateLayout::kTF1)), toVector(x));
  EXPECT_NE(toVector(toCanonicalGates(x, RNNCell::kGRU, GateLayout::kKeras)), toVector(x));
  EXPECT_EQ(toVector(toCanonicalGates(x, RNNCell::kLSTM, GateLayout::kKeras)), toVector(x));
  // ONNX LSTM i,o,f,c is not its own inverse: from and to differ.
  EXPECT_NE(toVector(toCanonicalGates(x, RNNCell::kLSTM, GateLayout::kONNX)),
            toVector(fromCanonicalGates(x, RNNCell::kLSTM, GateLayout::kONNX)));
}

TEST(GateLayout, ConvertsOtherDataTypesToFloat32) {
  HostTensor x(DataType::kFloat64, {3});
  for (int i = 0; i < 3; ++i) x.mutableData<double>()[i] = 10.0 * i;  // z, r, h blocks of H = 1
  const HostTensor out = toCanonicalGates(x, RNNCell::kGRU, GateLayout::kONNX);
  EXPECT_EQ(out.dtype(), DataType::kFloat32);
  EXPECT_EQ(toVector(out), (std::vector<float>{10, 0, 20}));
}

TEST(GateLayout, RejectsExtentThatIsNotAMultipleOfTheGateCount) {
  std::mt19937 rng(5);
  try {
    toCanonicalGates(randomTensor({10, 3}, rng), RNNCell::kLSTM, GateLayout::kONNX);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("[10, 3]"));
    EXPECT_THAT(e.what(), HasSubstr("not a multiple of 4"));
  }
  try {
    fromCanonicalGates(randomTensor({4, 7}, rng), RNNCell::kGRU, GateLayout::kKeras, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("[4, 7]"));
    EXPECT_THAT(e.what(), HasSubstr("not a multiple of 3"));
  }
  EXPECT_THROW(toCanonicalGates(randomTensor({8}, rng), RNNCell::kGRU, GateLayout::kPyTorch), Error);
}

TEST(GateLayout, RejectsBadRankAndAxis) {
  std::mt19937 rng(6);
  try {
    toCanonicalGates(randomTensor({4, 2, 2}, rng), RNNCell::kLSTM, GateLayout::kONNX);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("[4, 2, 2]"));
  }
  EXPECT_THROW(toCanonicalGates(randomTensor({8}, rng), RNNCell::kLSTM, GateLayout::kONNX, 1), Error);
  EXPECT_THROW(toCanonicalGates(randomTensor({8, 4}, rng), RNNCell::kLSTM, GateLayout::kONNX, 2), Error);
}

TEST(GateLayout, TF1GRUIsRejected) {
  std::mt19937 rng(7);
  for (const bool to : {true, false}) {
    try {
      const HostTensor x = randomTensor({6, 2}, rng);
      if (to) toCanonicalGates(x, RNNCell::kGRU, GateLayout::kTF1);
      else fromCanonicalGates(x, RNNCell::kGRU, GateLayout::kTF1);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_THAT(e.what(), HasSubstr("GRU"));
      EXPECT_THAT(e.what(), HasSubstr("Keras"));
    }
  }
  EXPECT_THROW(gateOrder(RNNCell::kGRU, GateLayout::kTF1), Error);
}

TEST(GateLayout, Transpose2d) {
  const HostTensor x = HostTensor::fromFloats({2, 3}, {1, 2, 3, 4, 5, 6});
  const HostTensor t = transpose2d(x);
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_EQ(toVector(t), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_THROW(transpose2d(HostTensor::fromFloats({4}, {1, 2, 3, 4})), Error);
}

}  // namespace
}  // namespace ds2rt::test
