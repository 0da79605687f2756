// NetworkDefinition: the mutable description of a network that importers and users fill in,
// layer by layer, before the Builder turns it into an Engine. Every layer and tensor has a
// name; every add* validates its inputs at once and names the layer in any error.
#pragma once

#include <algorithm>

#include <array>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ds2rt/tensor.h"
#include "ds2rt/weights.h"

namespace ds2rt {

namespace detail { struct Graph; }

// How a tensor's axes are laid out. N (batch) and T (time) are dynamic; the rest are fixed.
enum class TensorLayout : uint8_t {
  kImage,       // N x C x F x T  (conv front end; F frequency bins)
  kSequence,    // T x N x H      (recurrent part)
  kBatchMajor,  // N x T x H      (as deepspeech.pytorch returns its output)
  kLengths,     // N, int32: valid frames per utterance
};
const char* toString(TensorLayout layout);

constexpr int64_t kDynamic = -1;

// Handle to a tensor of one NetworkDefinition; cheap to copy.
struct Tensor {
  int id = -1;
  bool valid() const { return id >= 0; }
};

enum class ActivationType : uint8_t { kRelu, kClip, kTanh, kSigmoid, kNone };
const char* toString(ActivationType type);

// kClip is hardtanh / clipped ReLU: min(max(x, min), max).
struct ActivationDesc {
  ActivationType type = ActivationType::kNone;
  float min = 0.0f;
  float max = 20.0f;
  float apply(float x) const;
};

struct ConvolutionDesc {
  int out_channels = 0;
  std::array<int, 2> kernel{1, 1};  // {frequency, time}, as PyTorch's Conv2d on N x C x F x T
  std::array<int, 2> stride{1, 1};
  std::array<int, 2> padding{0, 0};      // before the data (and after it, unless padding_end says otherwise)
  std::array<int, 2> padding_end{-1, -1};  // after the data; -1: as `padding` (TensorFlow's "same" pads unevenly)
  std::array<int, 2> dilation{1, 1};
  HostTensor weight;  // out x in x kF x kT
  int paddingEnd(int axis) const { return padding_end[axis] < 0 ? padding[axis] : padding_end[axis]; }
  bool symmetric() const { return paddingEnd(0) == padding[0] && paddingEnd(1) == padding[1]; }
  HostTensor bias;    // out (optional)
  ActivationDesc activation;  // fused by the builder; users normally leave it kNone
};

// Inference batch norm over the channel axis: axis 1 of an image, the last axis of a sequence.
struct BatchNormDesc {
  HostTensor scale, bias, mean, variance;  // each of the channel count
  float epsilon = 1e-5f;
};

// Layer normalisation over the last axis of a sequence (or batch-major) tensor, per frame:
// y = (x - mean(x)) / sqrt(var(x) + epsilon) * scale + bias, with the biased variance (as
// PyTorch's and Paddle's LayerNorm). Given lengths, frames at and past each utterance's length
// come out as zeros (else they are normalised like any frame).
struct LayerNormDesc {
  HostTensor scale;  // H (optional: ones)
  HostTensor bias;   // H (optional: zeros)
  float epsilon = 1e-5f;
};

// How a layer with kernel/stride/padding/dilation along time changes the valid lengths:
// L' = floor((L + 2p - d(k-1) - 1) / s) + 1, as deepspeech.pytorch's get_seq_lens.
struct LengthsTransformDesc {
  int kernel = 1, stride = 1, padding = 0, dilation = 1;
  int64_t apply(int64_t length) const;
};

enum class RNNDirection : uint8_t { kForward, kReverse, kBidirectional };
enum class DirectionMerge : uint8_t { kConcat, kSum };
const char* toString(RNNDirection direction);
const char* toString(DirectionMerge merge);

// Weights of one layer and one direction in the canonical gate layout (see weights.h).
struct RNNGateWeights {
  HostTensor input_weight;      // G*H x I
  HostTensor recurrent_weight;  // G*H x H
  HostTensor input_bias;        // G*H (optional)
  HostTensor recurrent_bias;    // G*H (optional)
  // LSTM only (optional): 3*H peephole weights p_i, p_f, p_o (ONNX's P is p_i, p_o, p_f):
  // i = f(.. + p_i * c_{t-1}), f = f(.. + p_f * c_{t-1}), o = f(.. + p_o * c_t).
  HostTensor peephole;
};

// The gate functions of ONNX's recurrent operators (f, g and h in its equations). alpha and beta
// are the parameters of those that take any, with ONNX's meaning:
//   HardSigmoid max(0, min(1, alpha x + beta))   LeakyRelu x < 0 ? alpha x : x
//   ThresholdedRelu x > alpha ? x : 0            ScaledTanh alpha tanh(beta x)
//   Affine alpha x + beta                        Elu x < 0 ? alpha (e^x - 1) : x
//   Softsign x / (1 + |x|)                       Softplus log(1 + e^x)
enum class RNNActivationType : uint8_t {
  kSigmoid, kTanh, kRelu, kHardSigmoid, kLeakyRelu, kThresholdedRelu, kScaledTanh, kAffine, kElu, kSoftsign, kSoftplus
};
const char* toString(RNNActivationType type);  // ONNX's names: "Sigmoid", "HardSigmoid", ...

struct RNNActivation {
  RNNActivationType type = RNNActivationType::kSigmoid;
  float alpha = 0.0f, beta = 0.0f;
  float apply(float x) const;
  bool operator==(const RNNActivation&) const = default;
};
// How many of the parameters alpha, beta `type` takes (0, 1 or 2), in that order.
int parameterCount(RNNActivationType type);
// The gate functions a cell uses by default: LSTM f, g, h = Sigmoid, Tanh, Tanh; GRU f, g =
// Sigmoid, Tanh; vanilla Tanh (kRNNTanh) or Relu (kRNNRelu).
std::vector<RNNActivation> defaultActivations(RNNCell cell);

// What a recurrent layer's output holds at each frame.
enum class RNNOutput : uint8_t {
  kHidden,     // h_t (the usual output)
  kCellState,  // LSTM only: c_t, the cell state (ONNX's Y_c is its RNNFinalState)
};
const char* toString(RNNOutput output);

// A stack of recurrent layers. Between stacked layers the two directions are concatenated
// (as PyTorch, cuDNN and ONNX do); `merge` combines the directions of the last layer only.
// Frames past each utterance's length are never read and come out as zeros.
//
// Beyond the plain cells (the fast path of every backend) the desc can say what ONNX's recurrent
// operators can: a clip, other gate functions, LSTM peepholes and initial states. The CPU backend
// runs these on a general step; the CUDA backend refuses them.
struct RNNDesc {
  RNNCell cell = RNNCell::kLSTM;
  int hidden_size = 0;
  int num_layers = 1;
  RNNDirection direction = RNNDirection::kForward;
  DirectionMerge merge = DirectionMerge::kConcat;
  bool linear_before_reset = true;  // GRU only: PyTorch/cuDNN semantics when true
  std::vector<RNNGateWeights> weights;  // index layer * directions() + direction
  // Gate pre-activations are clipped to [-clip, clip] before their functions (ONNX's clip); 0: none.
  float clip = 0.0f;
  // Empty: the cell's defaults (defaultActivations). Otherwise the gate functions of each direction
  // in turn (ONNX's `activations`): f, g, h for LSTM, f, g for GRU, f for vanilla, per direction;
  // one direction's list alone is used for both directions. A vanilla RNN takes its function
  // from here when given (kRNNTanh and kRNNRelu are then the same cell).
  std::vector<RNNActivation> activations;
  // Constant initial states, (num_layers * directions) x B x H, index layer * directions() +
  // direction as PyTorch's h0/c0 and ONNX's initial_h/initial_c; B is the batch they were made
  // for (1: the same state for every utterance). Empty: zeros. initial_c is for LSTM only.
  HostTensor initial_h, initial_c;
  RNNOutput output = RNNOutput::kHidden;

  int directions() const { return direction == RNNDirection::kBidirectional ? 2 : 1; }
  bool hasPeepholes() const;
  // The gate functions of direction `direction` (the defaults when `activations` is empty).
  std::vector<RNNActivation> activationsOf(int direction) const;
  // Whether anything beyond the plain cell is asked for (clip, other gate functions, peepholes,
  // initial states, the cell-state output): what a backend's fast path may not do.
  bool hasExtras() const;
  // Sets one layer/direction from whole framework tensors in `layout` (converted on the way in).
  void setWeights(int layer, int direction, GateLayout layout, HostTensor input_weight,
                  HostTensor recurrent_weight, HostTensor input_bias = {}, HostTensor recurrent_bias = {});
  // TensorRT style: one gate at a time. Weights H x I and H x H, biases H (optional).
  void setGate(int layer, int direction, Gate gate, const HostTensor& input_weight,
               const HostTensor& recurrent_weight, const HostTensor& input_bias = {},
               const HostTensor& recurrent_bias = {});
};

// TensorFlow's "same" padding (ONNX's auto_pad SAME_UPPER) of a convolution with a stride along
// time depends on each utterance's length L: (ceil(L / s) - 1) * s + k - L frames in all, half of
// them (rounded down) before. A convolution pads the same for every utterance, so this layer, placed
// before it, moves each utterance later in time by the difference to the padding of a length that is
// a multiple of the stride; the convolution then pads (k - s) / 2 frames before (beginPadding) and
// k - 1 - beginPadding() - maxShift() after (ceil(T / s) output frames), and sees every utterance
// exactly as TensorFlow does. The input is an image (N x C x F x T); the output has maxShift() more
// frames, zero outside each shifted utterance.
struct SamePaddingShiftDesc {
  int kernel = 1;  // the convolution's extent along time (dilation included)
  int stride = 1;  // its stride along time
  int beginPadding() const { return std::max(kernel - stride, 0) / 2; }
  int shift(int64_t length) const {
    const int rest = static_cast<int>(length % stride);
    return rest == 0 ? 0 : std::max(kernel - rest, 0) / 2 - beginPadding();
  }
  int maxShift() const { return stride > 1 ? std::max(kernel - 1, 0) / 2 - beginPadding() : 0; }
};

// The state a recurrent layer ends in (ONNX's Y_h), from its output T x N x (D*H) (directions
// concatenated): a D x N x H tensor (sequence layout, D in place of time) holding each forward
// direction's frame at length - 1 and each reverse direction's frame 0.
struct RNNFinalStateDesc {
  RNNDirection direction = RNNDirection::kForward;
  int hidden_size = 0;
  int directions() const { return direction == RNNDirection::kBidirectional ? 2 : 1; }
};

// Row convolution over future frames (Wang et al. 2016), per feature:
// y[t] = sum_k w[h][k] * x[t + k], frames past the utterance's end read as zero.
struct LookaheadDesc {
  HostTensor weight;  // H x context (PyTorch's depthwise Conv1d weight H x 1 x context also accepted)
  ActivationDesc activation;  // fused by the builder
};

// y = x W^T + b over the last axis.
struct FullyConnectedDesc {
  int out_features = 0;
  HostTensor weight;  // out x in
  HostTensor bias;    // out (optional)
  ActivationDesc activation;  // fused by the builder
};

class NetworkDefinition {
 public:
  NetworkDefinition();
  ~NetworkDefinition();
  NetworkDefinition(NetworkDefinition&&) noexcept;
  NetworkDefinition& operator=(NetworkDefinition&&) noexcept;
  NetworkDefinition(const NetworkDefinition&) = delete;
  NetworkDefinition& operator=(const NetworkDefinition&) = delete;

  // N x channels x features x T, float32.
  Tensor addImageInput(const std::string& name, int channels, int features);
  // T x N x features, float32.
  Tensor addSequenceInput(const std::string& name, int features);
  // N x T x features, float32 (ONNX's recurrent operators with layout = 1 take this).
  Tensor addBatchMajorInput(const std::string& name, int features);
  // N, int32: valid frames of each utterance of the batch.
  Tensor addLengthsInput(const std::string& name);

  Tensor addConvolution(const std::string& name, Tensor input, ConvolutionDesc desc);
  Tensor addBatchNorm(const std::string& name, Tensor input, BatchNormDesc desc);
  Tensor addActivation(const std::string& name, Tensor input, ActivationDesc desc);
  Tensor addLayerNorm(const std::string& name, Tensor input, LayerNormDesc desc);
  // As above; frames at and past each utterance's length are zeroed, as the recurrent layers do.
  Tensor addLayerNorm(const std::string& name, Tensor input, Tensor lengths, LayerNormDesc desc);
  // Zeroes the frames at and past each utterance's length (deepspeech.pytorch's MaskConv).
  Tensor addSequenceMask(const std::string& name, Tensor input, Tensor lengths);
  Tensor addLengthsTransform(const std::string& name, Tensor lengths, LengthsTransformDesc desc);
  // N x C x F x T -> T x N x (C*F), channel-major flattening as deepspeech.pytorch's view().
  Tensor addReshapeToSequence(const std::string& name, Tensor input);
  Tensor addRNN(const std::string& name, Tensor input, Tensor lengths, RNNDesc desc);
  // As above with the initial states given at run time: sequence tensors (num_layers * directions)
  // x N x H (addSequenceInput(name, H), its first axis standing for the layers and directions);
  // initial_c is for LSTM only and optional (then desc's constant, or zeros).
  Tensor addRNN(const std::string& name, Tensor input, Tensor lengths, RNNDesc desc, Tensor initial_h,
                Tensor initial_c = {});
  Tensor addLookahead(const std::string& name, Tensor input, Tensor lengths, LookaheadDesc desc);
  // `rnn_output` must be a recurrent layer's output with its directions concatenated.
  Tensor addRNNFinalState(const std::string& name, Tensor rnn_output, Tensor lengths, RNNFinalStateDesc desc);
  Tensor addSamePaddingShift(const std::string& name, Tensor image, Tensor lengths, SamePaddingShiftDesc desc);
  Tensor addFullyConnected(const std::string& name, Tensor input, FullyConnectedDesc desc);
  Tensor addSoftmax(const std::string& name, Tensor input);
  Tensor addLogSoftmax(const std::string& name, Tensor input);
  // T x N x H -> N x T x H.
  Tensor addBatchMajor(const std::string& name, Tensor input);
  // N x T x H -> T x N x H (the same swap of the first two axes, the other way).
  Tensor addTimeMajor(const std::string& name, Tensor input);

  // Makes `tensor` an output of the network, optionally renaming it.
  void markOutput(Tensor tensor, const std::string& name = "");

  // Free-form facts about the model that travel with it into the engine and its plan file, untouched
  // by the builder: DeepSpeech2Model stores its whole config under "ds2rt.config", and it and every
  // import with known labels store what transcription reads (setTranscriptionMetadata in
  // deepspeech2.h), so that a plan alone is enough to transcribe.
  void setMetadata(const std::string& key, std::string value);
  const std::map<std::string, std::string>& metadata() const;

  const std::string& name(Tensor tensor) const;
  Shape shape(Tensor tensor) const;  // kDynamic for N and T
  TensorLayout layout(Tensor tensor) const;
  size_t layerCount() const;
  // A table of layers, output shapes and parameter counts.
  std::string describe() const;

  const detail::Graph& graph() const { return *graph_; }

 private:
  std::unique_ptr<detail::Graph> graph_;
};

}  // namespace ds2rt
