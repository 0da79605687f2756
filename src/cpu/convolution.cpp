// 2-D convolution on oneDNN, one utterance at a time (a whole batch in oneDNN's channel-blocked
// layout would need batch-sized copies of the activations). Primitives depend on the time extent,
// so each context caches one per length, with the filters reordered once into its layout; the
// utterance-sized buffers (blocked copies, oneDNN's scratchpad) live in the context's shared scratch.
#include <dnnl.hpp>
#include <map>
#include <utility>

#include "cpu/kernels.h"
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
  memory bias;
  // In contextScratch() during run() (oneDNN's own scratchpad would be tied to the creating thread).
  memory scratchpad;
  memory::desc src, dst;  // the graph's plain N x C x F x T
  // oneDNN's direct (JIT) convolutions want channel-blocked tensors; with plain ones it falls back
  // to im2col + GEMM, several times slower here. Activations are reordered on the way in and out.
  memory blocked_src, blocked_dst;  // empty when the primitive takes the plain layout
  dnnl::reorder to_blocked, from_blocked;
};

struct ConvState final : KernelState {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  std::map<int64_t, Compiled> cache;  // T -> primitive for one utterance
};

class ConvolutionKernel final : public Kernel {
 public:
  explicit ConvolutionKernel(const ConvolutionDesc& d) : desc_(d) {
    if (desc_.bias.empty()) desc_.bias = HostTensor(DataType::kFloat32, {desc_.out_channels});
  }

  std::unique_ptr<KernelState> createState(DeviceContext&) const override { return std::make_unique<ConvState>(); }

  void run(const KernelIO& io, KernelState* base) const override {
    auto& state = static_cast<ConvState&>(*base);
    auto it = state.cache.find(io.input_shape[3]);
    if (it == state.cache.end()) {
      if (state.cache.size() >= 64) state.cache.clear();  // many lengths (a long eval): keep the cache bounded
      it = state.cache.emplace(io.input_shape[3], compile(state, io)).first;
    }
    Compiled& c = it->second;
    ScratchLayout layout;
    const auto sizeOf = [](const memory& m) { return m ? static_cast<int64_t>(m.get_desc().get_size()) : 0; };
    const size_t scratchpad = layout.add<uint8_t>(sizeOf(c.scratchpad));
    const size_t blocked_src = layout.add<uint8_t>(sizeOf(c.blocked_src));
    const size_t blocked_dst = layout.add<uint8_t>(sizeOf(c.blocked_dst));
    void* block = contextScratch(*io.device, layout.bytes());
    c.scratchpad.set_data_handle(ScratchLayout::at<uint8_t>(block, scratchpad));
    if (c.blocked_src) c.blocked_src.set_data_handle(ScratchLayout::at<uint8_t>(block, blocked_src));
    if (c.blocked_dst) c.blocked_dst.set_data_handle(ScratchLayout::at<uint8_t>(block, blocked_dst));
    const int64_t in_size = numElements(io.input_shape) / io.input_shape[0];
    const int64_t out_size = numElements(io.output_shape) / io.output_shape[0];
    for (int64_t b = 0; b < io.input_shape[0]; ++b) {
      memory src(c.src, state.engine, const_cast<float*>(io.in<float>()) + b * in_size);
      memory dst(c.dst, state.engine, io.out<float>() + b * out_size);
      if (c.blocked_src) {
        c.to_blocked.execute(state.stream, src, c.blocked_src);
        src = c.blocked_src;
      }
      c.primitive.execute(state.stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, c.weights}, {DNNL_ARG_BIAS, c.bias},
                                         {DNNL_ARG_DST, c.blocked_dst ? c.blocked_dst : dst},
                                         {DNNL_ARG_SCRATCHPAD, c.scratchpad}});
      if (c.blocked_dst) c.from_blocked.execute(state.stream, c.blocked_dst, dst);
    }
    state.stream.wait();
  }

  std::string implementation() const override {
    return desc_.activation.type == ActivationType::kNone
               ? "oneDNN convolution"
               : cat("oneDNN convolution with ", toString(desc_.activation.type), " post-op");
  }

 private:
  Compiled compile(ConvState& state, const KernelIO& io) const {
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
    const memory::desc w_any(w_dims, dt::f32, tag::any), b_md({desc_.out_channels}, dt::f32, tag::x);
    const memory::desc src_any(src_dims, dt::f32, tag::any), dst_any(dst_dims, dt::f32, tag::any);
    dnnl::convolution_forward::desc op(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                       src_any, w_any, b_md, dst_any, stride, dilation, pad_l, pad_r);
    dnnl::primitive_attr attr;
    // A context may run on a different thread each time; a scratchpad of its own keeps that safe.
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (desc_.activation.type != ActivationType::kNone) {
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
    if (pd.src_desc() != c.src) {
      c.blocked_src = memory(pd.src_desc(), state.engine, nullptr);
      c.to_blocked = dnnl::reorder(memory(c.src, state.engine, nullptr), c.blocked_src);
    }
    if (pd.dst_desc() != c.dst) {
      c.blocked_dst = memory(pd.dst_desc(), state.engine, nullptr);
      c.from_blocked = dnnl::reorder(c.blocked_dst, memory(c.dst, state.engine, nullptr));
    }
    memory user_w({w_dims, dt::f32, tag::oihw}, state.engine, const_cast<float*>(desc_.weight.data<float>()));
    c.weights = memory(pd.weights_desc(), state.engine);
    dnnl::reorder(user_w, c.weights).execute(state.stream, user_w, c.weights);
    c.bias = memory(b_md, state.engine, const_cast<float*>(desc_.bias.data<float>()));
    state.stream.wait();
    return c;
  }

  ConvolutionDesc desc_;
};

}  // namespace

std::unique_ptr<Kernel> makeConvolution(const ConvolutionDesc& desc) {
  return std::make_unique<ConvolutionKernel>(desc);
}

}  // namespace ds2rt::detail::cpu
