// CPU kernels, one file per layer kind (src/cpu/<layer>.cpp).
#pragma once

#include <algorithm>
#include <limits>
#include <memory>

#include "core/kernel.h"

namespace ds2rt::detail::cpu {

// Element-wise passes smaller than this run on the calling thread: waking the team costs more,
// and far more on a loaded machine where a sleeping thread waits for a time slice.
constexpr int64_t kParallelMinElements = int64_t{1} << 18;

// kInt8: int8 filters and inputs (AMX or VNNI) for convolutions of 4 or more input channels; kBF16 and
// the rest of kInt8: bf16 where the CPU has AMX (oneDNN 2.6's bf16 convolutions measured ~3x slower
// than fp32 without it, ~3x faster with it); fp32 otherwise.
// `input` and `output`: the shapes known at build (kDynamic for N and T).
std::unique_ptr<Kernel> makeConvolution(const ConvolutionDesc& desc, Precision precision, const Shape& input,
                                        const Shape& output);
bool haveAmx();  // AMX tiles usable through oneDNN (bf16 and int8)
// fp32 convolutions with large filters (21 x 11) run through FFTs where the CPU has AVX-512 (see
// convolution_fft.cpp); DS2RT_CPU_CONV=direct keeps oneDNN's direct form for every convolution (any
// value but auto and direct is an error).
bool fftConvolutionPays(const ConvolutionDesc& desc);
// The filters' spectra are computed here where the input's channels and height are known at build.
std::unique_ptr<Kernel> makeFftConvolution(const ConvolutionDesc& desc, const Shape& input, const Shape& output);
std::unique_ptr<Kernel> makeBatchNorm(const BatchNormDesc& desc, TensorLayout layout);
std::unique_ptr<Kernel> makeActivation(const ActivationDesc& desc);
std::unique_ptr<Kernel> makeSequenceMask(TensorLayout layout);
std::unique_ptr<Kernel> makeReshapeToSequence();
// fp32 activations always; kInt8 / kBF16 quantise the input projections and recurrent matrices.
// `state_inputs`: the initial states come as run-time inputs (the layer's inputs after the lengths).
std::unique_ptr<Kernel> makeRNN(const RNNDesc& desc, Precision precision, bool state_inputs);
bool haveInt8();  // AVX512_VNNI
std::unique_ptr<Kernel> makeLookahead(const LookaheadDesc& desc);
// kBF16: bf16 weights and inputs, fp32 sums, bias and activation.
std::unique_ptr<Kernel> makeFullyConnected(const FullyConnectedDesc& desc, Precision precision);
std::unique_ptr<Kernel> makeSoftmax(bool log);
std::unique_ptr<Kernel> makeBatchMajor();
// `masked`: the layer has a lengths input; frames at and past each length become zeros.
std::unique_ptr<Kernel> makeLayerNorm(const LayerNormDesc& desc, TensorLayout layout, bool masked);
std::unique_ptr<Kernel> makeRNNFinalState(const RNNFinalStateDesc& desc);
std::unique_ptr<Kernel> makeSamePaddingShift(const SamePaddingShiftDesc& desc);

// An activation applied element by element in a kernel's own loop (after its bias): none, clip and
// ReLU inline (one clamp), the others through ActivationDesc::apply.
class InlineActivation {
 public:
  explicit InlineActivation(const ActivationDesc& act)
      : act_(act),
        clamps_(act.type == ActivationType::kClip || act.type == ActivationType::kRelu),
        low_(act.type == ActivationType::kClip ? act.min : 0.0f),
        high_(act.type == ActivationType::kClip ? act.max : std::numeric_limits<float>::infinity()) {}
  float operator()(float v) const {
    if (act_.type == ActivationType::kNone) return v;
    return clamps_ ? std::min(std::max(v, low_), high_) : act_.apply(v);
  }

 private:
  ActivationDesc act_;
  bool clamps_;
  float low_, high_;
};

// Scratch memory that every kernel of a context shares (they run one at a time, so one block
// serves them all instead of one per layer): valid during the calling kernel's run() only,
// 64-byte aligned, uninitialised; it grows when asked for more and keeps its address otherwise.
void* contextScratch(DeviceContext& device, size_t bytes);

// Lays out 64-byte aligned pieces of one contextScratch() block.
class ScratchLayout {
 public:
  // Reserves `count` elements of T; the piece's offset, for at() once the block exists.
  template <typename T>
  size_t add(int64_t count) {
    const size_t offset = bytes_;
    bytes_ += (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
    return offset;
  }
  size_t bytes() const { return bytes_; }
  template <typename T>
  static T* at(void* block, size_t offset) { return reinterpret_cast<T*>(static_cast<char*>(block) + offset); }

 private:
  size_t bytes_ = 0;
};

// C = A (M x K, row-major) * B^T (B is N x K, row-major) [+ C if accumulate]; multi-threaded (oneDNN sgemm).
void gemmABt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc, bool accumulate = false);

// oneDNN generates its sgemm kernels at the first call in a process (~20 ms, measured with
// bench/cpu_probes/first_run.cpp): kernels that will call gemmABt call this when they are created, so
// that this happens while the engine is built or loaded and its first run is as fast as the next.
void prepareGemm();

}  // namespace ds2rt::detail::cpu
