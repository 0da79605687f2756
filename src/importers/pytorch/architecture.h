// The DeepSpeech2 architecture of a PyTorch checkpoint: read from deepspeech.pytorch's
// hyper-parameters (Lightning 'hyper_parameters' with omegaconf configs, or the older package
// dict), and inferred from the state_dict's names and shapes.
#pragma once

#include <map>
#include <string>

#include "ds2rt/tensor.h"
#include "importers/config_evidence.h"
#include "importers/pickle/pickle_value.h"

namespace ds2rt::pytorch {

// The reader works on the values of the restricted unpickler (importers/pickle).
using namespace ds2rt::pickle;

// Fills the `read` half of `evidence` from the checkpoint's top-level object, where it holds any.
void readHyperParameters(const Value& root, importers::ConfigEvidence& evidence);

// Fills the `inferred` half from deepspeech.pytorch state_dict names and shapes: the RNN type from
// the gate multiple of weight_hh (4 LSTM, 3 GRU, 1 RNN), hidden size, layers (rnns.N),
// bidirectional (_reverse), lookahead context, output classes and the sample rate that gives the
// first RNN's input size (with the given window size, 0.02 s by default).
void inferFromShapes(const std::map<std::string, Shape>& shapes, importers::ConfigEvidence& evidence);

}  // namespace ds2rt::pytorch
