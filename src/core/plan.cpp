// Plan files: a fixed 48-byte header, the engine's graph as JSON, then the weights, each
// 64-byte aligned so they can be used straight from a memory mapping.
//
//   0  magic "DS2RTPLN"        16 u64 JSON size          40 u32 CRC-32 of bytes 48..end
//   8  u32 format version      24 u64 weights offset     44 u32 CRC-32 of bytes 0..43
//  12  u32 reserved (0)        32 u64 weights size
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/engine_impl.h"
#include "core/file.h"
#include "ds2rt/error.h"
#include "core/overloaded.h"

namespace ds2rt::detail {

using nlohmann::json;

namespace {

constexpr char kMagic[8] = {'D', 'S', '2', 'R', 'T', 'P', 'L', 'N'};
// 2: LayerNorm and RNNFinalState layers, convolutions' padding_end (a version-1 reader would ignore
// padding_end and pad evenly: a silently different network), int8 precision.
// 3: recurrent layers' clip, gate functions, peepholes, initial states (weights and inputs) and
// cell-state output (a version-2 reader would drop them: a silently different network); the
// SamePaddingShift layer.
constexpr uint32_t kFormatVersion = 3;
constexpr size_t kHeaderBytes = kPlanHeaderBytes;
constexpr size_t kAlignment = 64;

size_t alignUp(size_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

uint32_t crc(std::span<const uint8_t> bytes) {
  uLong value = crc32_z(0L, Z_NULL, 0);
  return static_cast<uint32_t>(crc32_z(value, bytes.data(), bytes.size()));
}

// The same over a loaded plan, giving back each piece of a memory-mapped file once summed: the
// check would otherwise make the whole file resident at once, which is all of an int8 or bf16
// engine's peak (their kernels keep converted copies). The pages fault back in as the kernels
// read them.
uint32_t crcReleasing(std::span<const uint8_t> bytes) {
  constexpr size_t kPiece = size_t{8} << 20;
  uLong value = crc32_z(0L, Z_NULL, 0);
  for (size_t offset = 0; offset < bytes.size(); offset += kPiece) {
    const auto piece = bytes.subspan(offset, std::min(kPiece, bytes.size() - offset));
    value = crc32_z(value, piece.data(), piece.size());
    releaseMappedPages(piece.data(), piece.size());
  }
  return static_cast<uint32_t>(value);
}

template <typename T>
void put(std::span<uint8_t> out, size_t offset, T value) {
  for (size_t i = 0; i < sizeof(T); ++i) out[offset + i] = static_cast<uint8_t>(static_cast<uint64_t>(value) >> (8 * i));
}

template <typename T>
T get(std::span<const uint8_t> in, size_t offset) {
  uint64_t value = 0;
  for (size_t i = sizeof(T); i-- > 0;) value = (value << 8) | in[offset + i];
  return static_cast<T>(value);
}

// Enum <-> string through the toString functions of the public headers.
template <typename E>
E parseEnum(const json& j, int count, const char* what) {
  const std::string name = j.get<std::string>();
  for (int i = 0; i < count; ++i)
    if (name == toString(static_cast<E>(i))) return static_cast<E>(i);
  fail("unknown ", what, " '", name, "'");
}

json activationJson(const ActivationDesc& a) { return {{"type", toString(a.type)}, {"min", a.min}, {"max", a.max}}; }
ActivationDesc activationFrom(const json& j) {
  return {parseEnum<ActivationType>(j.at("type"), 5, "activation"), j.at("min").get<float>(), j.at("max").get<float>()};
}

json rnnActivationsJson(const std::vector<RNNActivation>& list) {
  json out = json::array();
  for (const RNNActivation& a : list) out.push_back({{"type", toString(a.type)}, {"alpha", a.alpha}, {"beta", a.beta}});
  return out;
}

json paramsJson(const LayerDesc& desc) {
  return std::visit(
      Overloaded{
          [](const ConvolutionDesc& c) -> json {
            return {{"out_channels", c.out_channels}, {"kernel", c.kernel}, {"stride", c.stride}, {"padding", c.padding},
                    {"padding_end", c.padding_end}, {"dilation", c.dilation}, {"activation", activationJson(c.activation)}};
          },
          [](const BatchNormDesc& b) -> json { return {{"epsilon", b.epsilon}}; },
          [](const LayerNormDesc& n) -> json { return {{"epsilon", n.epsilon}}; },
          [](const ActivationDesc& a) -> json { return activationJson(a); },
          [](const LengthsTransformDesc& t) -> json {
            return {{"kernel", t.kernel}, {"stride", t.stride}, {"padding", t.padding}, {"dilation", t.dilation}};
          },
          [](const RNNDesc& r) -> json {
            return {{"cell", toString(r.cell)}, {"hidden_size", r.hidden_size}, {"num_layers", r.num_layers},
                    {"direction", toString(r.direction)}, {"merge", toString(r.merge)},
                    {"linear_before_reset", r.linear_before_reset}, {"clip", r.clip},
                    {"activations", rnnActivationsJson(r.activations)}, {"output", toString(r.output)}};
          },
          [](const LookaheadDesc& l) -> json { return {{"activation", activationJson(l.activation)}}; },
          [](const FullyConnectedDesc& f) -> json {
            return {{"out_features", f.out_features}, {"activation", activationJson(f.activation)}};
          },
          [](const SoftmaxDesc& s) -> json { return {{"log", s.log}}; },
          [](const SamePaddingShiftDesc& s) -> json { return {{"kernel", s.kernel}, {"stride", s.stride}}; },
          [](const RNNFinalStateDesc& f) -> json {
            return {{"direction", toString(f.direction)}, {"hidden_size", f.hidden_size}};
          },
          [](const auto&) -> json { return json::object(); },
      },
      desc);
}

LayerDesc descFrom(const std::string& kind, const json& p) {
  if (kind == "Convolution") {
    ConvolutionDesc c;
    c.out_channels = p.at("out_channels");
    c.kernel = p.at("kernel");
    c.stride = p.at("stride");
    c.padding = p.at("padding");
    if (p.contains("padding_end")) c.padding_end = p.at("padding_end");  // plans written before it: symmetric
    c.dilation = p.at("dilation");
    c.activation = activationFrom(p.at("activation"));
    return c;
  }
  if (kind == "BatchNorm") return BatchNormDesc{.epsilon = p.at("epsilon").get<float>()};
  if (kind == "Activation") return activationFrom(p);
  if (kind == "SequenceMask") return SequenceMaskDesc{};
  if (kind == "LengthsTransform")
    return LengthsTransformDesc{p.at("kernel"), p.at("stride"), p.at("padding"), p.at("dilation")};
  if (kind == "ReshapeToSequence") return ReshapeToSequenceDesc{};
  if (kind == "RNN") {
    RNNDesc r;
    r.cell = parseEnum<RNNCell>(p.at("cell"), 4, "RNN cell");
    r.hidden_size = p.at("hidden_size");
    r.num_layers = p.at("num_layers");
    r.direction = parseEnum<RNNDirection>(p.at("direction"), 3, "RNN direction");
    r.merge = parseEnum<DirectionMerge>(p.at("merge"), 2, "direction merge");
    r.linear_before_reset = p.at("linear_before_reset");
    // Absent from plans before version 3: the plain cell.
    r.clip = p.value("clip", 0.0f);
    if (p.contains("activations"))
      for (const json& a : p.at("activations"))
        r.activations.push_back({parseEnum<RNNActivationType>(a.at("type"), 11, "RNN gate function"),
                                 a.at("alpha").get<float>(), a.at("beta").get<float>()});
    if (p.contains("output")) r.output = parseEnum<RNNOutput>(p.at("output"), 2, "RNN output");
    check(r.num_layers > 0 && r.num_layers < 1000, "bad RNN layer count");
    r.weights.resize(static_cast<size_t>(r.num_layers * r.directions()));
    return r;
  }
  if (kind == "Lookahead") return LookaheadDesc{.activation = activationFrom(p.at("activation"))};
  if (kind == "FullyConnected")
    return FullyConnectedDesc{.out_features = p.at("out_features"), .activation = activationFrom(p.at("activation"))};
  if (kind == "Softmax" || kind == "LogSoftmax") return SoftmaxDesc{p.at("log").get<bool>()};
  if (kind == "BatchMajor") return BatchMajorDesc{};
  if (kind == "LayerNorm") return LayerNormDesc{.epsilon = p.at("epsilon").get<float>()};
  if (kind == "RNNFinalState")
    return RNNFinalStateDesc{parseEnum<RNNDirection>(p.at("direction"), 3, "RNN direction"), p.at("hidden_size")};
  if (kind == "SamePaddingShift") return SamePaddingShiftDesc{p.at("kernel").get<int>(), p.at("stride").get<int>()};
  fail("unknown layer kind '", kind, "'");
}

json configJson(const BuilderConfig& c) {
  return {{"device", toString(c.device)}, {"precision", toString(c.precision)}, {"optimize", c.optimize}};
}

}  // namespace

std::array<uint8_t, kPlanHeaderBytes> writePlan(const EngineImpl& engine,
                                                const std::function<void(std::span<const uint8_t>)>& append) {
  const Graph& g = engine.graph;
  json meta;
  meta["config"] = configJson(engine.config);
  meta["cuda_arch"] = engine.cuda_arch;
  meta["report"] = engine.report;
  meta["inputs"] = g.inputs;
  meta["outputs"] = g.outputs;
  meta["metadata"] = g.metadata;
  std::vector<const HostTensor*> blobs;
  size_t blob_size = 0;
  for (const auto& t : g.tensors)
    meta["tensors"].push_back({{"name", t.name}, {"dtype", toString(t.dtype)}, {"layout", static_cast<int>(t.layout)},
                               {"shape", t.shape}, {"is_input", t.is_input}, {"is_output", t.is_output}});
  for (const auto& layer : g.layers) {
    json l = {{"name", layer.name}, {"kind", kindName(layer.desc)}, {"inputs", layer.inputs}, {"output", layer.output},
              {"fused", layer.fused}, {"params", paramsJson(layer.desc)}, {"weights", json::object()}};
    forEachWeight(layer.desc, [&](const std::string& key, const HostTensor& t) {
      if (t.empty()) return;
      l["weights"][key] = {{"dtype", toString(t.dtype())}, {"shape", t.shape()}, {"offset", blob_size}};
      blobs.push_back(&t);
      blob_size = alignUp(blob_size + t.bytes());
    });
    meta["layers"].push_back(std::move(l));
  }
  const std::string text = meta.dump();
  const size_t blob_offset = alignUp(kHeaderBytes + text.size());
  // The body (all after the header) goes out piece by piece, its checksum summed on the way: a
  // plan is never held whole in memory (840 MiB at the peak of `ds2rt build` for a 1024-unit
  // biLSTM when it was).
  uLong body_crc = crc32_z(0L, Z_NULL, 0);
  const auto emit = [&](const void* data, size_t bytes) {
    const std::span<const uint8_t> piece(static_cast<const uint8_t*>(data), bytes);
    body_crc = crc32_z(body_crc, piece.data(), piece.size());
    append(piece);
  };
  static constexpr uint8_t kZeros[kAlignment] = {};
  const auto pad = [&](size_t bytes) { emit(kZeros, bytes); };
  emit(text.data(), text.size());
  pad(blob_offset - kHeaderBytes - text.size());
  size_t written = 0;  // of the blob area
  for (const HostTensor* t : blobs) {
    emit(t->data(), t->bytes());
    pad(alignUp(written + t->bytes()) - written - t->bytes());
    written = alignUp(written + t->bytes());
  }
  std::array<uint8_t, kPlanHeaderBytes> header{};
  std::memcpy(header.data(), kMagic, 8);
  put<uint32_t>(header, 8, kFormatVersion);
  put<uint64_t>(header, 16, text.size());
  put<uint64_t>(header, 24, blob_offset);
  put<uint64_t>(header, 32, blob_size);
  put<uint32_t>(header, 40, static_cast<uint32_t>(body_crc));
  put<uint32_t>(header, 44, crc(std::span<const uint8_t>(header).first(44)));
  return header;
}

std::vector<uint8_t> serializePlan(const EngineImpl& engine) {
  std::vector<uint8_t> out(kHeaderBytes, 0);
  const auto header =
      writePlan(engine, [&](std::span<const uint8_t> piece) { out.insert(out.end(), piece.begin(), piece.end()); });
  std::copy(header.begin(), header.end(), out.begin());
  return out;
}

void savePlan(const EngineImpl& engine, const std::string& path) {
  writeFileAtomically(path, [&](std::ostream& out) {
    static constexpr char kPlaceholder[kHeaderBytes] = {};
    out.write(kPlaceholder, kHeaderBytes);  // the header comes last
    const auto header = writePlan(engine, [&](std::span<const uint8_t> piece) {
      out.write(reinterpret_cast<const char*>(piece.data()), static_cast<std::streamsize>(piece.size()));
    });
    out.seekp(0);
    out.write(reinterpret_cast<const char*>(header.data()), header.size());
  });
}

std::shared_ptr<EngineImpl> deserializePlan(std::span<const uint8_t> bytes, std::shared_ptr<const void> keep_alive,
                                            const std::string& source) {
  check(bytes.size() >= kHeaderBytes, "'", source, "' is not a ds2rt plan: ", bytes.size(),
        " bytes is shorter than the plan header (truncated?)");
  check(std::memcmp(bytes.data(), kMagic, 8) == 0, "'", source, "' is not a ds2rt plan file (bad magic)");
  check(get<uint32_t>(bytes, 44) == crc(bytes.first(44)), "'", source, "': the plan header is corrupt (checksum mismatch)");
  const auto version = get<uint32_t>(bytes, 8);
  check(version <= kFormatVersion, "'", source, "' has plan format version ", version,
        ", newer than this ds2rt reads (", kFormatVersion, "): rebuild the plan or upgrade ds2rt");
  check(version >= 1, "'", source, "' has unknown plan format version ", version);
  const auto json_size = get<uint64_t>(bytes, 16), blob_offset = get<uint64_t>(bytes, 24),
             blob_size = get<uint64_t>(bytes, 32);
  check(json_size <= bytes.size() && blob_offset >= kHeaderBytes + json_size && blob_offset <= bytes.size() &&
            blob_size == bytes.size() - blob_offset,
        "'", source, "' is truncated: the header announces ", blob_offset + blob_size, " bytes, the file has ",
        bytes.size());
  check(get<uint32_t>(bytes, 40) == crcReleasing(bytes.subspan(kHeaderBytes)), "'", source,
        "' is corrupt: checksum mismatch in the plan body");

  try {
    const json meta = json::parse(bytes.begin() + kHeaderBytes, bytes.begin() + kHeaderBytes + json_size);
    const auto blob = bytes.subspan(blob_offset);
    Graph g;
    for (const auto& t : meta.at("tensors"))
      g.tensors.push_back({t.at("name"), dataTypeFromString(t.at("dtype")), static_cast<TensorLayout>(t.at("layout").get<int>()),
                           t.at("shape").get<Shape>(), t.at("is_input"), t.at("is_output")});
    const auto tensorId = [&](const json& j) {
      const int id = j.get<int>();
      check(id >= 0 && id < static_cast<int>(g.tensors.size()), "tensor index ", id, " out of range");
      return id;
    };
    for (const auto& id : meta.at("inputs")) g.inputs.push_back(tensorId(id));
    for (const auto& id : meta.at("outputs")) g.outputs.push_back(tensorId(id));
    // Absent from plans written before it existed; a reader that ignores it builds the same network.
    if (meta.contains("metadata")) g.metadata = meta.at("metadata").get<std::map<std::string, std::string>>();
    for (const auto& l : meta.at("layers")) {
      Layer layer{l.at("name"), descFrom(l.at("kind"), l.at("params")), {}, tensorId(l.at("output")),
                  l.at("fused").get<std::vector<std::string>>()};
      for (const auto& id : l.at("inputs")) layer.inputs.push_back(tensorId(id));
      const json& weights = l.at("weights");
      forEachWeight(layer.desc, [&](const std::string& key, HostTensor& t) {
        if (!weights.contains(key)) return;
        const json& w = weights.at(key);
        const DataType type = dataTypeFromString(w.at("dtype"));
        const Shape shape = w.at("shape").get<Shape>();
        const uint64_t offset = w.at("offset"), size = static_cast<uint64_t>(numElements(shape)) * sizeOf(type);
        check(offset % kAlignment == 0 && offset <= blob.size() && size <= blob.size() - offset, "weight '", key,
              "' of layer '", layer.name, "' lies outside the plan");
        t = HostTensor::view(type, shape, blob.data() + offset, keep_alive);
      });
      std::vector<const TensorInfo*> infos;
      for (int id : layer.inputs) infos.push_back(&g.tensors[id]);
      check(!infos.empty(), "layer '", layer.name, "' has no inputs");
      validateLayer(layer, infos);
      g.layers.push_back(std::move(layer));
    }
    BuilderConfig config;
    const json& c = meta.at("config");
    config.device = deviceFromString(c.at("device"));
    config.precision = precisionFromString(c.at("precision"));
    config.optimize = c.at("optimize");
    config.validate();
    if (config.device == Device::kCUDA) {
      const int built = meta.at("cuda_arch"), here = currentCudaArchitecture();
      check(built == here, "the plan was built for sm_", built, " but this GPU is sm_", here,
            ": rebuild the plan on this machine (ds2rt build)");
    }
    return EngineImpl::create(std::move(g), config, meta.at("report").get<std::vector<std::string>>());
  } catch (const json::exception& e) {
    fail("'", source, "' has a malformed plan description: ", e.what());
  } catch (const Error& e) {
    fail("'", source, "': ", e.what());
  }
}

}  // namespace ds2rt::detail
