// 2-D convolution on oneDNN, one utterance at a time (a whole batch in oneDNN's channel-blocked
// layout would need batch-sized copies of the activations). Primitives depend on the time extent,
// so each context caches one per length, with the filters reordered once into its layout; the
// utterance-sized buffers (blocked copies, oneDNN's scratchpad) live in the context's shared scratch.
//
// bf16: filters and input in bf16, fp32 sums and output. int8: filters quantised per output channel
// at build time, each utterance's input with one scale of its own (its largest magnitude), so no
// calibration data is needed. oneDNN 2.6's int8 convolutions (AMX or VNNI) take only scales fixed
// at creation, so the primitive applies the filter scales and the input scale, bias and activation
// follow in one pass over the output.
#include <dnnl.hpp>
#include <algorithm>
#include <cmath>
#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cpu/kernels.h"
#include "cpu/rnn_cell.h"
#include "ds2rt/error.h"

namespace ds2rt::detail::cpu {

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::algorithm eltwiseFor(ActivationType type) {
  switch (type) {
    case ActivationType::kRelu: return dnnl::algorithm::eltwise_relu;
    case ActivationType::kClip: return dnnl::algorithm::eltwise_clip;
    case ActivationType::kTanh: return dnnl::algorithm::eltwise_tanh;
    case ActivationType::kSigmoid: return dnnl::algorithm::eltwise_logistic;
    default: fail("no oneDNN post-op for activation ", toString(type));
  }
}

struct Compiled {
  dnnl::convolution_forward primitive;
  memory weights;
  memory bias;  // fp32 only (int8 adds it after the input scale)
  // In contextScratch() during run() (oneDNN's own scratchpad would be tied to the creating thread).
  memory scratchpad;
  memory::desc src, dst;  // the graph's plain N x C x F x T
  // oneDNN's direct (JIT) convolutions want channel-blocked tensors; with plain ones it falls back
  // to im2col + GEMM, several times slower here. Activations are reordered on the way in and out.
  // int8: blocked_src is always there and to_blocked quantises, scaled at run time.
  memory blocked_src, blocked_dst;  // empty when the primitive takes the plain layout
  dnnl::reorder to_blocked, from_blocked;
  // The usual blocked output is channels-last, which finishOutput() transposes itself: oneDNN 2.6's
  // reorder from it took ~5 ms per 10 s utterance, as long as an int8 convolution.
  bool channels_last_dst = false;
};

enum class ConvMath { kFp32, kBf16, kInt8 };

struct ConvState final : KernelState {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<int64_t, Compiled> cache;  // 2 T + (int8 input unsigned) -> primitive for one utterance
};

class ConvolutionKernel final : public Kernel {
 public:
  ConvolutionKernel(const ConvolutionDesc& d, ConvMath math) : desc_(d), math_(math) {
    if (desc_.bias.empty()) desc_.bias = HostTensor(DataType::kFloat32, {desc_.out_channels});
    if (int8()) {
      const int64_t per_channel = desc_.weight.size() / desc_.out_channels;
      weights_int8_.resize(desc_.weight.size());
      weight_scale_.resize(desc_.out_channels);
      quantizeRows(desc_.weight.data<float>(), desc_.out_channels, per_channel, weights_int8_.data(),
                   weight_scale_.data());
      desc_.weight = HostTensor();  // the kernel keeps the int8 copy only
    }
  }

  std::unique_ptr<KernelState> createState(DeviceContext&) const override { return std::make_unique<ConvState>(); }

  void run(const KernelIO& io, KernelState* base) const override {
    auto& state = static_cast<ConvState&>(*base);
    const int64_t in_size = numElements(io.input_shape) / io.input_shape[0];
    const int64_t out_size = numElements(io.output_shape) / io.output_shape[0];
    for (int64_t b = 0; b < io.input_shape[0]; ++b) {
      const float* input = io.in<float>() + b * in_size;
      float* output = io.out<float>() + b * out_size;
      // int8: an input with no negative values (after a ReLU or Hardtanh) takes u8, twice the resolution.
      const InputQuantization q = int8() ? quantization(input, in_size) : InputQuantization{};
      Compiled& c = compiled(state, io, q.is_unsigned);
      bindScratch(c, *io.device);
      memory src(c.src, state.engine, const_cast<float*>(input));
      memory dst(c.dst, state.engine, output);
      if (int8()) {
        float inverse_scale = 1.0f / q.scale;
        c.to_blocked.execute(state.stream, {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, c.blocked_src},
                                            {DNNL_ARG_ATTR_OUTPUT_SCALES, scalar(state, &inverse_scale)}});
        src = c.blocked_src;
      } else if (c.blocked_src) {
        c.to_blocked.execute(state.stream, src, c.blocked_src);
        src = c.blocked_src;
      }
      std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, c.weights},
                                           {DNNL_ARG_DST, c.blocked_dst ? c.blocked_dst : dst},
                                           {DNNL_ARG_SCRATCHPAD, c.scratchpad}};
      if (!int8()) args.emplace(DNNL_ARG_BIAS, c.bias);
      c.primitive.execute(state.stream, args);
      if (c.blocked_dst && !c.channels_last_dst) c.from_blocked.execute(state.stream, c.blocked_dst, dst);
      state.stream.wait();
      const int64_t plane = out_size / desc_.out_channels;
      if (c.channels_last_dst)
        finishOutput(static_cast<const float*>(c.blocked_dst.get_data_handle()), output, plane, q.scale);
      else if (int8())
        finishOutput(nullptr, output, plane, q.scale);
    }
  }

  std::string implementation() const override {
    std::string what = "oneDNN convolution";
    if (int8()) what = "oneDNN int8 convolution (filters per output channel, input per utterance)";
    if (math_ == ConvMath::kBf16) what = "oneDNN bf16 convolution (AMX)";
    if (desc_.activation.type == ActivationType::kNone) return what;
    return cat(what, " with ", toString(desc_.activation.type), int8() ? "" : " post-op");
  }

 private:
  struct InputQuantization {
    float scale = 1.0f;
    bool is_unsigned = false;
  };

  // Symmetric: the input's largest magnitude maps to 127 (s8), or to 255 (u8) where none is negative.
  static InputQuantization quantization(const float* x, int64_t count) {
    float low = 0.0f, high = 0.0f;
#pragma omp parallel for reduction(min : low) reduction(max : high) if (count > kParallelMinElements)
    for (int64_t i = 0; i < count; ++i) {
      low = std::min(low, x[i]);
      high = std::max(high, x[i]);
    }
    InputQuantization q;
    q.is_unsigned = low >= 0.0f;
    const float peak = std::max(-low, high);
    if (std::isfinite(peak) && peak > 0.0f) q.scale = peak / (q.is_unsigned ? 255.0f : 127.0f);
    return q;
  }

  Compiled& compiled(ConvState& state, const KernelIO& io, bool unsigned_input) const {
    const int64_t key = io.input_shape[3] * 2 + unsigned_input;
    auto it = state.cache.find(key);
    if (it == state.cache.end()) {
      if (state.cache.size() >= 64) state.cache.clear();  // many lengths (a long eval): keep the cache bounded
      it = state.cache.emplace(key, compile(state, io, unsigned_input)).first;
    }
    return it->second;
  }

  // The utterance-sized buffers live in the context's shared scratch.
  static void bindScratch(Compiled& c, DeviceContext& device) {
    ScratchLayout layout;
    const auto sizeOf = [](const memory& m) { return m ? static_cast<int64_t>(m.get_desc().get_size()) : 0; };
    const size_t scratchpad = layout.add<uint8_t>(sizeOf(c.scratchpad));
    const size_t blocked_src = layout.add<uint8_t>(sizeOf(c.blocked_src));
    const size_t blocked_dst = layout.add<uint8_t>(sizeOf(c.blocked_dst));
    void* block = contextScratch(device, layout.bytes());
    c.scratchpad.set_data_handle(ScratchLayout::at<uint8_t>(block, scratchpad));
    if (c.blocked_src) c.blocked_src.set_data_handle(ScratchLayout::at<uint8_t>(block, blocked_src));
    if (c.blocked_dst) c.blocked_dst.set_data_handle(ScratchLayout::at<uint8_t>(block, blocked_dst));
  }

  Compiled compile(ConvState& state, const KernelIO& io, bool unsigned_input) const {
    const auto& in = io.input_shape;
    const auto& out = io.output_shape;
    const memory::dims src_dims{1, in[1], in[2], in[3]}, dst_dims{1, out[1], out[2], out[3]};
    const memory::dims w_dims{desc_.out_channels, in[1], desc_.kernel[0], desc_.kernel[1]};
    memory::dims pad_l, pad_r, dilation, stride;
    for (int i = 0; i < 2; ++i) {
      const int64_t effective_kernel = (desc_.kernel[i] - 1) * desc_.dilation[i] + 1;
      pad_l.push_back(desc_.padding[i]);
      // oneDNN wants the right padding that makes its output extent match the floor formula
      // (at most desc_.paddingEnd(i): the frames it leaves out reach no output).
      pad_r.push_back((out[2 + i] - 1) * desc_.stride[i] + effective_kernel - in[2 + i] - desc_.padding[i]);
      dilation.push_back(desc_.dilation[i] - 1);
      stride.push_back(desc_.stride[i]);
    }
    Compiled c;
    c.src = memory::desc(src_dims, dt::f32, tag::nchw);
    c.dst = memory::desc(dst_dims, dt::f32, tag::nchw);
    const dt weight_type = int8() ? dt::s8 : math_ == ConvMath::kBf16 ? dt::bf16 : dt::f32;
    const memory::desc w_any(w_dims, weight_type, tag::any), b_md({desc_.out_channels}, dt::f32, tag::x);
    const dt src_type = int8() ? (unsigned_input ? dt::u8 : dt::s8) : weight_type;
    const memory::desc src_any(src_dims, src_type, tag::any), dst_any(dst_dims, dt::f32, tag::any);
    // int8 adds the bias itself, after the input scale: a zero descriptor means none to oneDNN.
    const dnnl::convolution_forward::desc op(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                             src_any, w_any, int8() ? memory::desc() : b_md, dst_any, stride,
                                             dilation, pad_l, pad_r);
    dnnl::primitive_attr attr;
    // A context may run on a different thread each time; a scratchpad of its own keeps that safe.
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (int8()) {
      attr.set_output_scales(1 << 1, weight_scale_);  // per output channel
    } else if (desc_.activation.type != ActivationType::kNone) {
      dnnl::post_ops ops;
      // oneDNN's relu alpha is a negative slope; ds2rt's relu ignores min and max.
      const bool relu = desc_.activation.type == ActivationType::kRelu;
      ops.append_eltwise(1.0f, eltwiseFor(desc_.activation.type), relu ? 0.0f : desc_.activation.min,
                         desc_.activation.max);
      attr.set_post_ops(ops);
    }
    const dnnl::convolution_forward::primitive_desc pd(op, attr, state.engine);
    c.primitive = dnnl::convolution_forward(pd);
    c.scratchpad = memory(pd.scratchpad_desc(), state.engine, nullptr);  // handles set by run()
    if (int8()) {
      c.blocked_src = memory(pd.src_desc(), state.engine, nullptr);
      dnnl::primitive_attr quantize;
      quantize.set_output_scales(0, {DNNL_RUNTIME_F32_VAL});
      c.to_blocked = dnnl::reorder(dnnl::reorder::primitive_desc(state.engine, c.src, state.engine, pd.src_desc(),
                                                                 quantize));
    } else if (pd.src_desc() != c.src) {
      c.blocked_src = memory(pd.src_desc(), state.engine, nullptr);
      c.to_blocked = dnnl::reorder(memory(c.src, state.engine, nullptr), c.blocked_src);
    }
    if (pd.dst_desc() != c.dst) {
      c.blocked_dst = memory(pd.dst_desc(), state.engine, nullptr);
      c.channels_last_dst = pd.dst_desc() == memory::desc(dst_dims, dt::f32, tag::nhwc);
      if (!c.channels_last_dst) c.from_blocked = dnnl::reorder(c.blocked_dst, memory(c.dst, state.engine, nullptr));
    }
    void* filters = int8() ? static_cast<void*>(const_cast<int8_t*>(weights_int8_.data()))
                           : static_cast<void*>(const_cast<float*>(desc_.weight.data<float>()));
    memory user_w({w_dims, int8() ? dt::s8 : dt::f32, tag::oihw}, state.engine, filters);
    // bf16: converted by the reorder; int8: with oneDNN's compensation for signed input.
    c.weights = memory(pd.weights_desc(), state.engine);
    dnnl::reorder(user_w, c.weights).execute(state.stream, user_w, c.weights);
    c.bias = memory(b_md, state.engine, const_cast<float*>(desc_.bias.data<float>()));
    state.stream.wait();
    return c;
  }

  static memory scalar(ConvState& state, float* value) {
    return memory({{1}, dt::f32, memory::format_tag::x}, state.engine, value);
  }

  // One utterance's output, C x plane: from channels-last `source` (plane x C), or in place where
  // `source` is null; int8 applies the input scale, the bias and the activation on the way.
  void finishOutput(const float* source, float* out, int64_t plane, float input_scale) const {
    const int64_t channels = desc_.out_channels;
    const float* bias = desc_.bias.data<float>();
    const InlineActivation activation(desc_.activation);
    constexpr int64_t kTile = 64;  // pixels: a tile of every channel stays in L1 while it is spread out
#pragma omp parallel for if (channels * plane > kParallelMinElements)
    for (int64_t first = 0; first < plane; first += kTile) {
      const int64_t last = std::min(plane, first + kTile);
      for (int64_t ch = 0; ch < channels; ++ch) {
        float* row = out + ch * plane;
        if (source)
          for (int64_t i = first; i < last; ++i) row[i] = source[i * channels + ch];
        if (!int8()) continue;  // fp32 and bf16 applied bias and activation in the primitive
        for (int64_t i = first; i < last; ++i) {
          row[i] = activation(row[i] * input_scale + bias[ch]);
        }
      }
    }
  }

  bool int8() const { return math_ == ConvMath::kInt8; }

  ConvolutionDesc desc_;
  ConvMath math_;
  std::vector<int8_t> weights_int8_;  // int8: O x I x H x W
  std::vector<float> weight_scale_;   // int8: per output channel
};

}  // namespace

// Where the CPU has AMX, oneDNN's bf16 convolutions are ~3x faster than fp32 (and barely slower
// than int8, at a tenth of its error); without it they were ~3x slower than fp32 (AVX512_BF16).
bool haveAmx() {
  constexpr auto amx = static_cast<unsigned>(dnnl_cpu_isa_avx512_core_amx);
  return (static_cast<unsigned>(dnnl_get_effective_cpu_isa()) & amx) == amx;
}

std::unique_ptr<Kernel> makeConvolution(const ConvolutionDesc& desc, Precision precision, const Shape& input,
                                        const Shape& output) {
  ConvMath math = ConvMath::kFp32;
  // A one-channel convolution (the spectrogram's) has no channel depth for int8's 4-deep dot
  // products to use, and its signed input costs the most accuracy: int8 engines keep it in bf16
  // with AMX, fp32 otherwise.
  const bool deep = desc.weight.dim(1) >= 4;
  if (precision == Precision::kInt8 && deep && !haveAmx()) math = ConvMath::kInt8;
  else if ((precision == Precision::kInt8 || precision == Precision::kBF16) && haveAmx()) math = ConvMath::kBf16;
  if (math == ConvMath::kFp32 && fftConvolutionPays(desc)) return makeFftConvolution(desc, input, output);
  return std::make_unique<ConvolutionKernel>(desc, math);
}

}  // namespace ds2rt::detail::cpu
