#include "cuda/context.cuh"

#include "cuda/cublaslt_loader.h"

#include <algorithm>

namespace ds2rt::detail::cuda {

namespace {

template <typename T>
__global__ void convertFromFloat(const float* in, T* out, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = fromFloat<T>(in[i]);
}

template <typename T>
__global__ void convertToFloat(const T* in, float* out, int64_t n) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) out[i] = toFloat(in[i]);
}

}  // namespace

void throwCuda(cudaError_t status, const char* call, const char* file, int line) {
  fail("CUDA error ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ") in ", call, " at ", file, ":", line);
}

void throwCublas(cublasStatus_t status, const char* call, const char* file, int line) {
  fail("cuBLAS error ", static_cast<int>(status), " in ", call, " at ", file, ":", line);
}

DeviceMemory allocateDevice(size_t bytes) {
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, bytes == 0 ? 1 : bytes);
  if (status != cudaSuccess) fail("cannot allocate ", bytes, " bytes of GPU memory: ", cudaGetErrorString(status));
  return DeviceMemory(p);
}

DeviceMemory uploadFloats(const float* data, size_t count, DataType type) {
  DeviceMemory staging = allocateDevice(count * sizeof(float));
  DS2RT_CUDA(cudaMemcpy(staging.get(), data, count * sizeof(float), cudaMemcpyHostToDevice));
  if (type == DataType::kFloat32) return staging;
  DeviceMemory out = allocateDevice(count * sizeOf(type));
  dispatchType(type, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    convertFromFloat<T><<<blocksFor(count), 256>>>(static_cast<const float*>(staging.get()), static_cast<T*>(out.get()),
                                                  static_cast<int64_t>(count));
  });
  DS2RT_CUDA_LAUNCHED();
  DS2RT_CUDA(cudaDeviceSynchronize());
  return out;
}

float gpuMs(cudaStream_t stream, const std::function<void()>& launch) {
  struct Event {
    cudaEvent_t e = nullptr;
    Event() { DS2RT_CUDA(cudaEventCreate(&e)); }
    ~Event() { cudaEventDestroy(e); }
  } start, stop;
  DS2RT_CUDA(cudaEventRecord(start.e, stream));
  launch();
  DS2RT_CUDA(cudaEventRecord(stop.e, stream));
  DS2RT_CUDA(cudaEventSynchronize(stop.e));
  float ms = 0.0f;
  DS2RT_CUDA(cudaEventElapsedTime(&ms, start.e, stop.e));
  return ms;
}

DeviceMemory uploadAs(const HostTensor& tensor, DataType type) {
  const HostTensor f = tensor.toFloat32();
  return uploadFloats(f.data<float>(), static_cast<size_t>(f.size()), type);
}

CudaDeviceContext::CudaDeviceContext(const ContextOptions& options, DataType activation_type)
    : type_(activation_type), use_graphs_(options.cuda_graphs) {
  requireCublasLt();
  DS2RT_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  DS2RT_CUBLAS(cublasLtCreate(&cublas_));
}

CudaDeviceContext::~CudaDeviceContext() {
  dropGraphs();
  if (cudnn_) cudnnDestroy(cudnn_);
  cublasLtDestroy(cublas_);
  cudaStreamDestroy(stream_);
  for (auto& p : outputs_) cudaFreeHost(p.data);
}

cudnnHandle_t CudaDeviceContext::cudnn() {
  if (!cudnn_) {
    check(cudnnCreate(&cudnn_) == CUDNN_STATUS_SUCCESS, "cannot create a cuDNN handle (is cuDNN 9 installed?)");
    check(cudnnSetStream(cudnn_, stream_) == CUDNN_STATUS_SUCCESS, "cudnnSetStream failed");
  }
  return cudnn_;
}

void* CudaDeviceContext::grow(Growable& g, size_t bytes) {
  if (bytes > g.capacity) {
    DS2RT_CUDA(cudaStreamSynchronize(stream_));
    g.memory.reset();
    g.memory = allocateDevice(bytes);
    g.capacity = bytes;
    dropGraphs();
  }
  return g.memory.get();
}

void CudaDeviceContext::dropGraphs() {
  for (auto& [key, recorded] : graphs_) cudaGraphExecDestroy(recorded.exec);
  graphs_.clear();
  seen_.clear();
}

void* CudaDeviceContext::buffer(int slot, size_t bytes) {
  if (static_cast<size_t>(slot) >= buffers_.size()) buffers_.resize(slot + 1);
  return grow(buffers_[slot], bytes);
}

void* CudaDeviceContext::scratch(int index, size_t bytes) {
  if (static_cast<size_t>(index) >= scratch_.size()) scratch_.resize(index + 1);
  return grow(scratch_[index], bytes);
}

const void* CudaDeviceContext::input(int index, const HostTensor& tensor) {
  if (static_cast<size_t>(index) >= inputs_.size()) {
    inputs_.resize(index + 1);
    staging_.resize(index + 1);
  }
  const size_t n = static_cast<size_t>(tensor.size());
  float* staging = static_cast<float*>(grow(staging_[index], n * sizeof(float)));
  DS2RT_CUDA(cudaMemcpyAsync(staging, tensor.data(), n * sizeof(float), cudaMemcpyHostToDevice, stream_));
  if (type_ == DataType::kFloat32) return staging;
  void* out = grow(inputs_[index], n * sizeOf(type_));
  dispatchType(type_, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    convertFromFloat<T><<<blocksFor(n), 256, 0, stream_>>>(staging, static_cast<T*>(out), static_cast<int64_t>(n));
  });
  DS2RT_CUDA_LAUNCHED();
  return out;
}

const int32_t* CudaDeviceContext::lengths(int tensor, const std::vector<int32_t>& values) {
  void* d = grow(lengths_[tensor], values.size() * sizeof(int32_t));
  DS2RT_CUDA(cudaMemcpyAsync(d, values.data(), values.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
  return static_cast<const int32_t*>(d);
}

void CudaDeviceContext::execute(const std::string& shape_key, const std::function<void()>& launch) {
  // The first run of a shape runs eagerly (kernels allocate scratch and pick algorithms then);
  // the second records a graph; later runs replay it. Each run ends synchronised, so no graph is in
  // flight when one is dropped.
  if (use_graphs_ && seen_.size() >= kMaxCountedShapes && !seen_.count(shape_key))
    std::erase_if(seen_, [&](const auto& entry) { return !graphs_.count(entry.first); });
  const int runs = use_graphs_ && !shape_key.empty() ? seen_[shape_key]++ : 0;
  if (runs == 0) {
    launch();
  } else {
    auto it = graphs_.find(shape_key);
    if (it == graphs_.end()) {
      if (graphs_.size() >= kMaxGraphs) {
        const auto oldest = std::min_element(graphs_.begin(), graphs_.end(), [](const auto& a, const auto& b) {
          return a.second.last_use < b.second.last_use;
        });
        cudaGraphExecDestroy(oldest->second.exec);
        graphs_.erase(oldest);
      }
      cudaGraph_t graph = nullptr;
      DS2RT_CUDA(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
      try {
        launch();
      } catch (...) {
        cudaStreamEndCapture(stream_, &graph);
        if (graph) cudaGraphDestroy(graph);
        throw;
      }
      DS2RT_CUDA(cudaStreamEndCapture(stream_, &graph));
      cudaGraphExec_t exec = nullptr;
      const cudaError_t status = cudaGraphInstantiate(&exec, graph, 0);
      cudaGraphDestroy(graph);
      DS2RT_CUDA(status);
      it = graphs_.emplace(shape_key, Recorded{exec, 0}).first;
    }
    it->second.last_use = ++runs_;
    DS2RT_CUDA(cudaGraphLaunch(it->second.exec, stream_));
  }
  DS2RT_CUDA(cudaStreamSynchronize(stream_));
}

const float* CudaDeviceContext::download(int output_index, const void* data, size_t elements, DataType type) {
  if (static_cast<size_t>(output_index) >= outputs_.size()) outputs_.resize(output_index + 1);
  Pinned& p = outputs_[output_index];
  if (elements > p.capacity) {
    cudaFreeHost(p.data);
    p.data = nullptr;
    DS2RT_CUDA(cudaMallocHost(&p.data, elements * sizeof(float)));
    p.capacity = elements;
  }
  const float* source = static_cast<const float*>(data);
  if (type != DataType::kFloat32) {
    if (static_cast<size_t>(output_index) >= converted_.size()) converted_.resize(output_index + 1);
    float* converted = static_cast<float*>(grow(converted_[output_index], elements * sizeof(float)));
    dispatchType(type, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      convertToFloat<T><<<blocksFor(elements), 256, 0, stream_>>>(static_cast<const T*>(data), converted,
                                                                  static_cast<int64_t>(elements));
    });
    DS2RT_CUDA_LAUNCHED();
    source = converted;
  }
  DS2RT_CUDA(cudaMemcpyAsync(p.data, source, elements * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  DS2RT_CUDA(cudaStreamSynchronize(stream_));
  return p.data;
}

}  // namespace ds2rt::detail::cuda
