#include "cuda/context.cuh"
#include "cuda/gemm.cuh"
#include "cuda/kernels.cuh"

namespace ds2rt::detail::cuda {

namespace {

template <typename T>
__global__ void biasActivationKernel(T* data, const float* bias, DeviceActivation act, int64_t rows, int64_t cols) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= rows * cols) return;
  const float b = bias ? bias[i % cols] : 0.0f;
  data[i] = fromFloat<T>(act(toFloat(data[i]) + b));
}

struct GemmState final : KernelState {
  GemmState(DataType input, DataType output, FloatMath math) : gemm(input, output, math) {}
  GemmRunner gemm;
};

class FullyConnectedKernel final : public TypedKernel {
 public:
  // The weights and the input are in `input_type`, the output (and `type_`) in `output_type`.
  FullyConnectedKernel(const FullyConnectedDesc& d, DataType input_type, DataType output_type, FloatMath math)
      : TypedKernel(output_type), input_type_(input_type), math_(math), out_(d.out_features), in_(d.weight.dim(1)),
        act_(d.activation), weight_(uploadAs(d.weight, input_type)) {
    if (!d.bias.empty()) bias_ = uploadAs(d.bias, DataType::kFloat32);
  }

  std::unique_ptr<KernelState> createState(DeviceContext&) const override {
    return std::make_unique<GemmState>(input_type_, type_, math_);
  }

  void run(const KernelIO& io, KernelState* state) const override {
    const int64_t rows = numElements(io.input_shape) / in_;
    GemmShape s{.m = rows, .n = out_, .k = in_, .lda = in_, .ldb = in_, .ldc = out_};
    static_cast<GemmState*>(state)->gemm.run(device(io), s, {io.input, weight_.get(), io.output});
    if (!bias_ && act_.type == ActivationType::kNone) return;
    dispatchType(type_, [&](auto* tag) {
      using T = std::remove_pointer_t<decltype(tag)>;
      biasActivationKernel<T><<<blocksFor(rows * out_), 256, 0, stream(io)>>>(
          io.out<T>(), static_cast<const float*>(bias_.get()), act_, rows, out_);
    });
    DS2RT_CUDA_LAUNCHED();
  }

  std::string implementation() const override { return "cuBLASLt GEMM + bias/activation kernel"; }

 private:
  DataType input_type_;
  FloatMath math_;
  int64_t out_, in_;
  DeviceActivation act_;
  DeviceMemory weight_, bias_;
};

}  // namespace

std::unique_ptr<Kernel> makeFullyConnected(const FullyConnectedDesc& desc, DataType input_type, DataType output_type,
                                           FloatMath math) {
  return std::make_unique<FullyConnectedKernel>(desc, input_type, output_type, math);
}

}  // namespace ds2rt::detail::cuda
