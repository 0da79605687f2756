// The ONNX project's own backend node tests for LSTM, GRU and RNN (onnx/backend/test/data/node/
// test_{lstm,gru,rnn,simple_rnn}_* of the onnx Python package; scripts/test.sh points
// DS2RT_ONNX_NODE_TESTS there). Each test's model has the weights as graph inputs: they become
// initializers here, X stays the data input and ds2rt's lengths input gets T for every utterance
// (or the test's sequence_lens). Tests that need what ds2rt's recurrent layer lacks are listed below
// with the reason; any other outcome (a listed one passing, an unlisted one failing) fails.
#include <onnx/onnx_pb.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "ds2rt/builder.h"
#include "ds2rt/importers.h"
#include "importers/onnx/onnx_file.h"
#include "test_util.h"

namespace ds2rt::test {
namespace {

namespace fs = std::filesystem;

// Not covered by ds2rt's layer set, with the reason (none at present).
const std::map<std::string, std::string> kNotCovered = {};

onnx::TensorProto readTensor(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  onnx::TensorProto t;
  check(in.good() && t.ParseFromIstream(&in), "cannot read the TensorProto ", path.string());
  return t;
}

// Runs one node test; throws ds2rt::Error when the model cannot be imported or built.
double runNodeTest(const fs::path& dir) {
  std::ifstream in(dir / "model.onnx", std::ios::binary);
  onnx::ModelProto model;
  check(model.ParseFromIstream(&in), "cannot parse ", (dir / "model.onnx").string());
  const fs::path data = dir / "test_data_set_0";
  auto* g = model.mutable_graph();
  std::map<std::string, HostTensor> inputs;
  std::string x_name;
  int64_t batch = 0, time = 0;
  onnx::GraphProto kept;
  for (int i = 0; i < g->input_size(); ++i) {
    const std::string name = g->input(i).name();
    onnx::TensorProto value = readTensor(data / ("input_" + std::to_string(i) + ".pb"));
    value.set_name(name);
    const HostTensor host = onnx_import::toHostTensor(value, name);
    if (i == 0) {  // X: seq_length x batch_size x input_size (batch_size x seq_length x ... with layout 1)
      x_name = name;
      bool batch_first = false;
      for (const auto& a : g->node(0).attribute()) batch_first |= a.name() == "layout" && a.i() == 1;
      time = host.dim(batch_first ? 1 : 0), batch = host.dim(batch_first ? 0 : 1);
      inputs[name] = host.toFloat32();
      *kept.add_input() = g->input(i);
    } else if (name == "sequence_lens") {
      inputs[name] = host;
      *kept.add_input() = g->input(i);
    } else {
      *g->add_initializer() = value;
    }
  }
  g->clear_input();
  for (const auto& input : kept.input()) *g->add_input() = input;
  const std::string path = scratch(dir.filename().string() + ".onnx");
  {
    std::ofstream out(path, std::ios::binary);
    model.SerializeToOstream(&out);
  }
  const ImportedNetwork imported = importOnnx(path);
  const Engine engine = Builder().build(imported.network);
  for (const std::string& name : engine.inputNames())
    if (!inputs.count(name)) inputs[name] = HostTensor::fromInts({batch}, std::vector<int32_t>(batch, static_cast<int32_t>(time)));
  auto ctx = engine.createContext();
  const auto out = ctx.run(inputs);
  double worst = 0;
  for (int i = 0; i < g->output_size(); ++i) {
    if (g->output(i).name().empty()) continue;
    const HostTensor expected = onnx_import::toHostTensor(readTensor(data / ("output_" + std::to_string(i) + ".pb")), "expected").toFloat32();
    const HostTensor& got = out.at(g->output(i).name());
    check(got.size() == expected.size(), "output ", g->output(i).name(), ": ", toString(got.shape()), " vs expected ",
          toString(expected.shape()));
    worst = std::max(worst, relativeL2(toVector(got), toVector(expected)));
  }
  return worst;
}

TEST(OnnxNodeTests, RecurrentOperators) {
  const char* root = std::getenv("DS2RT_ONNX_NODE_TESTS");
  if (root == nullptr || !fs::is_directory(root))
    GTEST_SKIP() << "DS2RT_ONNX_NODE_TESTS is not set to the onnx package's onnx/backend/test/data/node folder "
                    "(scripts/test.sh sets it from the onnx package it installs into .venv-test)";
  std::vector<fs::path> tests;
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string name = entry.path().filename().string();
    for (const char* prefix : {"test_lstm", "test_gru", "test_rnn", "test_simple_rnn"})
      if (name.rfind(prefix, 0) == 0) tests.push_back(entry.path());
  }
  std::sort(tests.begin(), tests.end());
  ASSERT_FALSE(tests.empty()) << "no recurrent node tests under " << root;
  int passed = 0;
  std::string report;
  for (const fs::path& dir : tests) {
    const std::string name = dir.filename().string();
    const auto listed = kNotCovered.find(name);
    std::string outcome;
    try {
      const double error = runNodeTest(dir);
      if (error < 1e-4) {
        ++passed;
        outcome = cat("pass (relative L2 ", error, ")");
        EXPECT_EQ(listed, kNotCovered.end()) << name << " passes: remove it from kNotCovered";
      } else {
        outcome = cat("WRONG OUTPUT (relative L2 ", error, ")");
        ADD_FAILURE() << name << ": relative L2 " << error;
      }
    } catch (const Error& e) {
      outcome = cat("not covered: ", e.what());
      EXPECT_NE(listed, kNotCovered.end()) << name << " fails: " << e.what();
    }
    report += cat("\n  ", name, ": ", outcome);
  }
  std::cout << "ONNX backend node tests for LSTM/GRU/RNN: " << passed << " of " << tests.size() << " pass" << report << "\n";
  RecordProperty("passed", passed);
  RecordProperty("total", static_cast<int>(tests.size()));
}

}  // namespace
}  // namespace ds2rt::test
