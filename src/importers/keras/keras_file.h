// A Keras model file: the model config (JSON) and each layer's weights in Keras's own order
// (layer.weights). Two containers:
//   Keras 3 .keras: a zip holding config.json and model.weights.h5, whose datasets lie at
//     layers/<layer>/vars/<i> (recurrent cells at layers/<layer>/cell/vars/<i>, a Bidirectional's
//     at layers/<layer>/forward_layer/cell/vars/<i> and .../backward_layer/...);
//   legacy .h5 (model.save("x.h5")): HDF5 with a model_config attribute and a model_weights group
//     holding one group per layer whose weight_names attribute lists its datasets in order.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "ds2rt/tensor.h"
#include "importers/keras/hdf5_file.h"

namespace ds2rt::keras {

class KerasFile {
 public:
  static bool looksLikeKerasArchive(const std::string& path, std::span<const uint8_t> head);
  static bool looksLikeLegacyH5(const std::string& path, std::span<const uint8_t> head);
  static KerasFile open(const std::string& path);

  // {"class_name": "Functional" | "Sequential" | ..., "config": {"layers": [...], ...}}
  const nlohmann::json& modelConfig() const { return config_; }
  const std::string& format() const { return format_; }
  const std::string& source() const { return source_; }
  // The weights of one layer (see LayerConfig for `name` and `archive_key`). `part` selects a
  // wrapped layer's share: "" (all of them), "forward" or "backward" (Bidirectional).
  std::vector<HostTensor> weights(const std::string& name, const std::string& archive_key,
                                  const std::string& part = "") const;

 private:
  std::vector<HostTensor> archiveWeights(const std::string& key, const std::string& part) const;
  std::vector<HostTensor> legacyWeights(const std::string& layer, const std::string& part) const;

  std::string source_;
  std::string format_;
  nlohmann::json config_;
  bool legacy_ = false;
  std::shared_ptr<Hdf5File> h5_;
};

}  // namespace ds2rt::keras
