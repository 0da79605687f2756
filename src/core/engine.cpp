#include <algorithm>
#include <chrono>
#include <iomanip>
#include <sstream>

#include "core/engine_impl.h"
#include "core/file.h"
#include "ds2rt/builder.h"
#include "ds2rt/engine.h"
#include "ds2rt/error.h"
#include "passes/passes.h"

namespace ds2rt {

using detail::EngineImpl;

namespace detail {

std::shared_ptr<EngineImpl> EngineImpl::create(Graph graph, BuilderConfig config, std::vector<std::string> report) {
  auto engine = std::make_shared<EngineImpl>();
  engine->graph = std::move(graph);
  engine->config = config;
  engine->report = std::move(report);
  engine->backend = createBackend(config);
  for (const auto& layer : engine->graph.layers) engine->kernels.push_back(engine->backend->compile(layer, engine->graph));
  engine->memory = planMemory(engine->graph, engine->kernels);
  for (size_t t = 0; t < engine->graph.tensors.size(); ++t)
    engine->tensor_types.push_back(engine->graph.tensors[t].layout == TensorLayout::kLengths
                                       ? DataType::kInt32
                                       : engine->backend->tensorType(engine->graph, static_cast<int>(t)));
  if (config.device == Device::kCUDA) engine->cuda_arch = currentCudaArchitecture();
  return engine;
}

std::unique_ptr<Backend> createBackend(const BuilderConfig& config) {
  if (config.device == Device::kCPU) return createCpuBackend(config);
#ifdef DS2RT_WITH_CUDA
  return createCudaBackend(config);
#else
  fail("this build of ds2rt has no CUDA backend (configure with -DDS2RT_WITH_CUDA=ON)");
#endif
}


#ifndef DS2RT_WITH_CUDA
int currentCudaArchitecture() { return 0; }
#endif

struct ContextImpl {
  std::shared_ptr<const EngineImpl> engine;
  ContextOptions options;
  std::vector<HostTensor> bound;  // per graph input
  std::vector<Shape> shapes;      // per tensor, concrete after run()
  std::vector<std::vector<int32_t>> lengths;  // per lengths tensor
  std::unique_ptr<DeviceContext> device;
  std::vector<const void*> data;  // per float tensor, in the device's memory
  std::vector<std::unique_ptr<KernelState>> states;
  std::vector<LayerTiming> timings;
  RunStats stats;

  void bindInputs();
  void computeShapes();
  void execute();
};

namespace {

int64_t batchOf(const TensorInfo& info, const Shape& shape) {
  return info.layout == TensorLayout::kSequence ? shape[1] : shape[0];
}

int64_t timeOf(const TensorInfo& info, const Shape& shape) {
  switch (info.layout) {
    case TensorLayout::kImage: return shape[3];
    case TensorLayout::kSequence: return shape[0];
    case TensorLayout::kBatchMajor: return shape[1];
    default: return -1;
  }
}

}  // namespace

void ContextImpl::bindInputs() {
  const Graph& g = engine->graph;
  int64_t batch = -1, max_time = -1;
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const TensorInfo& info = g.tensors[g.inputs[i]];
    HostTensor& t = bound[i];
    check(!t.empty(), "input '", info.name, "' was not set");
    check(t.rank() == info.shape.size(), "input '", info.name, "' must have rank ", info.shape.size(), " ",
          toString(info.shape), ", got ", toString(t.shape()));
    for (size_t d = 0; d < info.shape.size(); ++d)
      check(info.shape[d] == kDynamic || info.shape[d] == t.dim(d), "input '", info.name, "' has shape ",
            toString(t.shape()), ", expected ", toString(info.shape));
    check(t.size() > 0, "input '", info.name, "' is empty: ", toString(t.shape()));
    const int64_t n = batchOf(info, t.shape());
    check(batch < 0 || batch == n, "input '", info.name, "' has batch ", n, " but another input has batch ", batch);
    batch = n;
    shapes[g.inputs[i]] = t.shape();
    if (info.layout == TensorLayout::kLengths) {
      check(t.dtype() == DataType::kInt32 || t.dtype() == DataType::kInt64, "input '", info.name,
            "' must be int32 (or int64), got ", toString(t.dtype()));
      auto& out = lengths[g.inputs[i]];
      out.resize(n);
      for (int64_t b = 0; b < n; ++b)
        out[b] = static_cast<int32_t>(t.dtype() == DataType::kInt32 ? t.data<int32_t>()[b] : t.data<int64_t>()[b]);
    } else {
      check(t.dtype() == DataType::kFloat32, "input '", info.name, "' must be float32, got ", toString(t.dtype()));
      max_time = std::max(max_time, timeOf(info, t.shape()));
      data[g.inputs[i]] = device->input(static_cast<int>(i), t);
    }
  }
  for (int id : g.inputs)
    if (g.tensors[id].layout == TensorLayout::kLengths)
      for (size_t b = 0; b < lengths[id].size(); ++b)
        check(lengths[id][b] >= 1 && (max_time < 0 || lengths[id][b] <= max_time), "input '", g.tensors[id].name,
              "': utterance ", b, " has length ", lengths[id][b], ", outside 1..", max_time, " (the padded time extent)");
}

void ContextImpl::computeShapes() {
  const Graph& g = engine->graph;
  for (const Layer& layer : g.layers) {
    std::vector<Shape> in;
    for (int id : layer.inputs) in.push_back(shapes[id]);
    Shape out = inferShape(layer, in);
    for (int64_t d : out)
      check(d > 0, "layer '", layer.name, "': input ", toString(in[0]), " gives an empty output ", toString(out),
            " (utterances too short?)");
    shapes[layer.output] = std::move(out);
    if (const auto* t = std::get_if<LengthsTransformDesc>(&layer.desc)) {
      const auto& src = lengths[layer.inputs[0]];
      auto& dst = lengths[layer.output];
      dst.resize(src.size());
      for (size_t b = 0; b < src.size(); ++b) {
        const int64_t l = t->apply(src[b]);
        check(l >= 1, "layer '", layer.name, "': utterance ", b, " of length ", src[b], " leaves no frames");
        dst[b] = static_cast<int32_t>(l);
      }
    }
  }
}

void ContextImpl::execute() {
  const Graph& g = engine->graph;
  std::vector<size_t> slot_bytes(engine->memory.slot_count, 0);
  for (size_t id = 0; id < g.tensors.size(); ++id)
    if (const int s = engine->memory.slot_of[id]; s >= 0)
      slot_bytes[s] = std::max(slot_bytes[s], static_cast<size_t>(numElements(shapes[id])) * sizeOf(engine->tensor_types[id]));
  for (size_t id = 0; id < g.tensors.size(); ++id)
    if (const int s = engine->memory.slot_of[id]; s >= 0) data[id] = device->buffer(s, slot_bytes[s]);

  std::vector<KernelIO> calls(g.layers.size());
  std::string shape_key;
  for (size_t i = 0; i < g.layers.size(); ++i) {
    const Layer& layer = g.layers[i];
    KernelIO& io = calls[i];
    io.input = data[layer.inputs[0]];
    io.input_shape = shapes[layer.inputs[0]];
    if (layer.inputs.size() > 1) {
      const int id = layer.inputs[1];
      check(static_cast<int64_t>(lengths[id].size()) == batchOf(g.tensors[layer.inputs[0]], io.input_shape), "layer '",
            layer.name, "': lengths for ", lengths[id].size(), " utterances, batch of ", io.input_shape[0]);
      io.lengths = device->lengths(id, lengths[id]);
      io.host_lengths = lengths[id].data();
    }
    for (size_t k = 2; k < layer.inputs.size(); ++k) {
      io.extra_inputs.push_back(data[layer.inputs[k]]);
      io.extra_shapes.push_back(shapes[layer.inputs[k]]);
    }
    io.output = const_cast<void*>(data[layer.output]);
    io.output_shape = shapes[layer.output];
    io.device = device.get();
    shape_key += toString(io.input_shape);
  }
  timings.clear();
  const auto launch = [&] {
    for (size_t i = 0; i < g.layers.size(); ++i) {
      const Kernel* kernel = engine->kernels[i].get();
      if (!kernel) continue;
      try {
        const auto start = std::chrono::steady_clock::now();
        kernel->run(calls[i], states[i].get());
        if (options.profile) {
          device->synchronize();
          const std::chrono::duration<double, std::milli> elapsed = std::chrono::steady_clock::now() - start;
          timings.push_back({g.layers[i].name, kindName(g.layers[i].desc), elapsed.count()});
        }
      } catch (const Error& e) {
        fail("layer '", g.layers[i].name, "': ", e.what());
      } catch (const std::exception& e) {
        fail("layer '", g.layers[i].name, "' failed: ", e.what());
      }
    }
  };
  device->execute(options.profile ? std::string() : shape_key, launch);
}

}  // namespace detail

// ---- Engine ------------------------------------------------------------------------------

Engine::Engine(std::shared_ptr<const EngineImpl> impl) : impl_(std::move(impl)) {}

Engine Builder::build(const NetworkDefinition& network) const {
  config_.validate();
  detail::Graph graph = network.graph();
  check(!graph.outputs.empty(), "the network has no outputs: call markOutput() on the tensors you want back");
  std::vector<std::string> report;
  if (config_.optimize) detail::runAllPasses(graph, report);
  auto impl = EngineImpl::create(std::move(graph), config_, std::move(report));
  for (size_t i = 0; i < impl->graph.layers.size(); ++i)
    if (impl->kernels[i])
      impl->report.push_back("kernel for " + impl->graph.layers[i].name + ": " + impl->kernels[i]->implementation());
  impl->report.push_back("memory plan: " + std::to_string(impl->memory.slot_count) + " activation buffers for " +
                         std::to_string(impl->graph.layers.size()) + " layers");
  return Engine(std::move(impl));
}

Engine Engine::load(const std::string& plan_path) {
  const auto file = detail::MappedFile::open(plan_path);
  return Engine(detail::deserializePlan(file.bytes(), file.keepAlive(), plan_path));
}

Engine Engine::deserialize(const std::vector<uint8_t>& plan, const std::string& source) {
  auto copy = std::make_shared<std::vector<uint8_t>>(plan);
  return Engine(detail::deserializePlan(*copy, copy, source));
}

void Engine::save(const std::string& plan_path) const { detail::savePlan(*impl_, plan_path); }
std::vector<uint8_t> Engine::serialize() const { return detail::serializePlan(*impl_); }
const BuilderConfig& Engine::config() const { return impl_->config; }
const std::vector<std::string>& Engine::buildReport() const { return impl_->report; }
const std::map<std::string, std::string>& Engine::metadata() const { return impl_->graph.metadata; }

std::vector<std::string> Engine::inputNames() const {
  std::vector<std::string> names;
  for (int id : impl_->graph.inputs) names.push_back(impl_->graph.tensors[id].name);
  return names;
}

Shape Engine::tensorShape(const std::string& name) const {
  const auto is_named = [&](int id) { return impl_->graph.tensors[id].name == name; };
  for (const auto* ids : {&impl_->graph.inputs, &impl_->graph.outputs})
    for (int id : *ids)
      if (is_named(id)) return impl_->graph.tensors[id].shape;
  fail("the engine has no input or output '", name, "'");
}

std::vector<std::string> Engine::outputNames() const {
  std::vector<std::string> names;
  for (int id : impl_->graph.outputs) names.push_back(impl_->graph.tensors[id].name);
  return names;
}

std::string Engine::describe() const {
  const auto& g = impl_->graph;
  std::ostringstream out;
  out << "engine: " << impl_->config.toString() << "\n";
  for (int id : g.inputs) out << "input  " << g.tensors[id].name << " " << toString(g.tensors[id].shape) << "\n";
  for (int id : g.outputs) out << "output " << g.tensors[id].name << " " << toString(g.tensors[id].shape) << "\n";
  size_t name_width = 8;
  for (const auto& layer : g.layers) name_width = std::max(name_width, layer.name.size() + 2);
  const int w = static_cast<int>(name_width);
  out << std::left << std::setw(w) << "layer" << std::setw(19) << "kind" << std::setw(17) << "output" << std::setw(12)
      << "parameters"
      << "implementation; fused\n";
  int64_t total = 0;
  for (size_t i = 0; i < g.layers.size(); ++i) {
    const auto& layer = g.layers[i];
    const int64_t params = detail::parameterCount(layer.desc);
    total += params;
    out << std::setw(w) << layer.name << std::setw(19) << detail::kindName(layer.desc) << std::setw(17)
        << toString(g.tensors[layer.output].shape) << std::setw(12) << params
        << (impl_->kernels[i] ? impl_->kernels[i]->implementation() : std::string("host-side"));
    for (const auto& f : layer.fused) out << "; + " << f;
    out << "\n";
  }
  out << "total parameters: " << total << "\n" << impl_->memory.describe(g) << "\n";
  return out.str();
}

ExecutionContext Engine::createContext(const ContextOptions& options) const {
  auto ctx = std::make_unique<detail::ContextImpl>();
  ctx->engine = impl_;
  ctx->options = options;
  const auto& g = impl_->graph;
  ctx->bound.resize(g.inputs.size());
  ctx->shapes.resize(g.tensors.size());
  ctx->lengths.resize(g.tensors.size());
  ctx->data.assign(g.tensors.size(), nullptr);
  ctx->device = impl_->backend->createContext(options);
  for (const auto& kernel : impl_->kernels) ctx->states.push_back(kernel ? kernel->createState(*ctx->device) : nullptr);
  return ExecutionContext(std::move(ctx));
}

// ---- ExecutionContext ----------------------------------------------------------------------

ExecutionContext::ExecutionContext(std::unique_ptr<detail::ContextImpl> impl) : impl_(std::move(impl)) {}
ExecutionContext::~ExecutionContext() = default;
ExecutionContext::ExecutionContext(ExecutionContext&&) noexcept = default;
ExecutionContext& ExecutionContext::operator=(ExecutionContext&&) noexcept = default;

void ExecutionContext::setInput(const std::string& name, const HostTensor& tensor) {
  const auto& g = impl_->engine->graph;
  for (size_t i = 0; i < g.inputs.size(); ++i)
    if (g.tensors[g.inputs[i]].name == name) {
      impl_->bound[i] = tensor;
      return;
    }
  std::string known;
  for (int id : g.inputs) known += (known.empty() ? "" : ", ") + g.tensors[id].name;
  fail("the engine has no input '", name, "' (inputs: ", known, ")");
}

void ExecutionContext::run() {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  impl_->bindInputs();
  impl_->computeShapes();
  const auto bound = Clock::now();
  impl_->execute();
  impl_->stats.input_ms = std::chrono::duration<double, std::milli>(bound - start).count();
  impl_->stats.compute_ms = std::chrono::duration<double, std::milli>(Clock::now() - bound).count();
}

HostTensor ExecutionContext::output(const std::string& name) const {
  const auto& g = impl_->engine->graph;
  for (const int& id : g.outputs)
    if (g.tensors[id].name == name) {
      check(!impl_->shapes[id].empty(), "output '", name, "' is not available before run()");
      if (g.tensors[id].layout == TensorLayout::kLengths)
        return HostTensor::view(DataType::kInt32, impl_->shapes[id], impl_->lengths[id].data(), nullptr);
      const int index = static_cast<int>(&id - g.outputs.data());
      const float* host = impl_->device->download(index, impl_->data[id], static_cast<size_t>(numElements(impl_->shapes[id])),
                                                  impl_->engine->tensor_types[id]);
      return HostTensor::view(DataType::kFloat32, impl_->shapes[id], host, nullptr);
    }
  fail("the engine has no output '", name, "'");
}

const std::vector<LayerTiming>& ExecutionContext::layerTimings() const { return impl_->timings; }
const RunStats& ExecutionContext::lastRunStats() const { return impl_->stats; }

std::map<std::string, HostTensor> ExecutionContext::run(const std::map<std::string, HostTensor>& inputs) {
  for (const auto& [name, tensor] : inputs) setInput(name, tensor);
  run();
  std::map<std::string, HostTensor> outputs;
  for (int id : impl_->engine->graph.outputs) {
    const std::string& name = impl_->engine->graph.tensors[id].name;
    outputs[name] = output(name).clone();
  }
  return outputs;
}

}  // namespace ds2rt
