// ds2rt convert IN OUT: a model file of any supported format -> the ds2rt model format, TensorRT .wts
// weights or an ONNX model, chosen by OUT's extension.
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "ds2rt/error.h"
#include "ds2rt/exporters.h"
#include "ds2rt/importers.h"

namespace ds2rt::tools {

namespace {

struct ConvertArgs {
  std::string input, output;
  std::string rnn_type, labels;
  std::string wts_flavor = "pytorch", gate_layout;  // .wts output flavour; .wts input gate layout
  float forget_bias = 0;
  int opset = OnnxExportOptions{}.opset;  // .onnx output
  bool int64_lengths = false, log_softmax = false;
  int hidden_size = 0, layers = 0, context = 0, sample_rate = 0;
  bool bidirectional = false, unidirectional = false;
  // Set when the flag was given (CLI11 options, for count()).
  CLI::Option *rnn_type_opt, *hidden_size_opt, *layers_opt, *context_opt, *labels_opt, *sample_rate_opt;
  CLI::Option *gate_layout_opt, *forget_bias_opt;
};

// --labels: a JSON list file (deepspeech.pytorch's labels.json), or the labels themselves as one
// string of characters ("_'ABCDEFGHIJKLMNOPQRSTUVWXYZ ").
std::vector<std::string> parseLabels(const std::string& text) {
  std::vector<std::string> labels;
  if (std::filesystem::is_regular_file(text)) {
    std::ifstream in(text);
    try {
      labels = nlohmann::json::parse(in).get<std::vector<std::string>>();
    } catch (const nlohmann::json::exception& e) {
      fail("--labels: '", text, "' is not a JSON list of strings: ", e.what());
    }
    return labels;
  }
  for (const char c : text) {  // one label per UTF-8 character
    if ((static_cast<unsigned char>(c) & 0xc0) == 0x80 && !labels.empty())
      labels.back() += c;
    else
      labels.emplace_back(1, c);
  }
  return labels;
}

ImportOptions importOptions(const ConvertArgs& a) {
  ImportOptions o;
  if (a.rnn_type_opt->count()) o.rnn_type = a.rnn_type;
  if (a.hidden_size_opt->count()) o.hidden_size = a.hidden_size;
  if (a.layers_opt->count()) o.hidden_layers = a.layers;
  if (a.bidirectional || a.unidirectional) o.bidirectional = a.bidirectional;
  if (a.context_opt->count()) o.lookahead_context = a.context;
  if (a.labels_opt->count()) o.labels = parseLabels(a.labels);
  if (a.sample_rate_opt->count()) o.sample_rate = a.sample_rate;
  if (a.gate_layout_opt->count())
    o.gate_layout = a.gate_layout == "tf1" ? GateLayout::kTF1 : a.gate_layout == "onnx" ? GateLayout::kONNX
                    : a.gate_layout == "keras" ? GateLayout::kKeras : GateLayout::kPyTorch;
  if (a.forget_bias_opt->count()) o.forget_bias = a.forget_bias;
  return o;
}

void convert(const ConvertArgs& a) {
  const std::string extension = std::filesystem::path(a.output).extension().string();
  check(extension == ".safetensors" || extension == ".wts" || extension == ".onnx", "output '", a.output,
        "': ds2rt convert writes the ds2rt model format (.safetensors), TensorRT .wts weights (.wts) or an ONNX "
        "model (.onnx)");
  const ImportedModel imported = importModel(a.input, importOptions(a));
  std::cout << "read " << a.input << ": " << imported.format << "\n";
  for (const ConfigOrigin& o : imported.origins)
    std::cout << "  " << std::left << std::setw(24) << o.field << " " << std::setw(10) << o.value << " "
              << std::setw(9) << toString(o.kind) << " " << o.detail << "\n";
  for (const std::string& note : imported.notes) std::cout << "  note: " << note << "\n";
  imported.model.createNetwork();  // every weight checked against the configuration before writing
  if (extension == ".wts") {
    writeWts(imported.model.weights(), a.output, a.wts_flavor == "tensorrt" ? WtsFlavor::kTensorRT : WtsFlavor::kPyTorch);
    std::cout << "wrote " << a.output << ": " << imported.model.weights().tensors().size() << " tensors, "
              << a.wts_flavor << " .wts flavour\n";
    return;
  }
  if (extension == ".onnx") {
    exportOnnx(imported.model, a.output, {.opset = a.opset, .int64_lengths = a.int64_lengths, .log_softmax = a.log_softmax});
    std::cout << "wrote " << a.output << ": ONNX opset " << a.opset << ", inputs features (N x 1 x "
              << imported.model.config().spect.frequencyBins() << " x T) and lengths ("
              << (a.int64_lengths ? "int64" : "int32") << "), outputs " << (a.log_softmax ? "log_probs" : "probs")
              << " and output_lengths\n";
    return;
  }
  imported.model.save(a.output);
  const DeepSpeech2Config& c = imported.model.config();
  std::cout << "wrote " << a.output << ": " << c.rnn_type << ", " << c.hidden_layers << " layers of "
            << c.hidden_size << ", " << (c.bidirectional ? "bidirectional" : "unidirectional");
  if (!c.bidirectional) std::cout << " (lookahead context " << c.lookahead_context << ")";
  std::cout << ", " << c.labels.size() << " labels, " << c.spect.sample_rate << " Hz\n";
}

}  // namespace

void addConvertCommand(CLI::App& app) {
  auto a = std::make_shared<ConvertArgs>();
  std::string formats;
  for (const std::string& f : supportedModelFormats()) formats += "\n  " + f;
  auto* cmd = app.add_subcommand("convert", "Convert a trained model (PyTorch checkpoint, ...) to the ds2rt model "
                                            "format, TensorRT .wts weights or ONNX (by OUT's extension). The "
                                            "architecture is read from the file where it is stored, else inferred "
                                            "from the weights; the flags below override it. Reads:" +
                                                formats);
  cmd->add_option("input", a->input, "model file: .pth, .pt, .ckpt, .wts, .safetensors, .json")->required()->check(CLI::ExistingFile);
  cmd->add_option("output", a->output, "file to write: a ds2rt model (.safetensors), .wts weights or an ONNX model (.onnx)")->required();
  a->rnn_type_opt = cmd->add_option("--rnn-type", a->rnn_type, "lstm | gru | rnn")->check(CLI::IsMember({"lstm", "gru", "rnn"}));
  a->hidden_size_opt = cmd->add_option("--hidden-size", a->hidden_size, "RNN hidden size")->check(CLI::PositiveNumber);
  a->layers_opt = cmd->add_option("--layers", a->layers, "number of RNN layers")->check(CLI::PositiveNumber);
  auto* bi = cmd->add_flag("--bidirectional", a->bidirectional, "bidirectional RNNs");
  cmd->add_flag("--unidirectional", a->unidirectional, "unidirectional RNNs with lookahead")->excludes(bi);
  a->context_opt = cmd->add_option("--context", a->context, "lookahead context (unidirectional)")->check(CLI::PositiveNumber);
  a->labels_opt = cmd->add_option("--labels", a->labels, "labels: a JSON list file, or one string of characters");
  a->sample_rate_opt = cmd->add_option("--sample-rate", a->sample_rate, "audio sample rate in Hz")->check(CLI::PositiveNumber);
  cmd->add_option("--wts-flavor", a->wts_flavor, "a .wts output: pytorch (gen_wts.py: name count hex...) or tensorrt "
                  "(name type count hex...)")->check(CLI::IsMember({"pytorch", "tensorrt"}));
  a->gate_layout_opt = cmd->add_option("--gate-layout", a->gate_layout, "a .wts input's recurrent gate order: pytorch | onnx | keras | tf1")
                           ->check(CLI::IsMember({"pytorch", "onnx", "keras", "tf1"}));
  a->forget_bias_opt = cmd->add_option("--forget-bias", a->forget_bias, "a .wts input's TF1 LSTMCell forget_bias, added to the f bias");
  cmd->add_option("--opset", a->opset, "an .onnx output's ai.onnx opset (13 to 17)");
  cmd->add_flag("--int64-lengths", a->int64_lengths, "an .onnx output takes and gives lengths as int64 (default int32)");
  cmd->add_flag("--log-softmax", a->log_softmax, "an .onnx output gives log_probs instead of probs");
  cmd->callback([a] { convert(*a); });
}

}  // namespace ds2rt::tools
