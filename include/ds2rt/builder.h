// The Builder turns a NetworkDefinition into an optimised, immutable Engine: shape inference,
// batch-norm folding, activation fusion, dead-layer removal, memory planning and kernel choice.
#pragma once

#include "ds2rt/builder_config.h"
#include "ds2rt/engine.h"
#include "ds2rt/network.h"

namespace ds2rt {

class Builder {
 public:
  explicit Builder(BuilderConfig config = {}) : config_(config) {}
  Engine build(const NetworkDefinition& network) const;
  const BuilderConfig& config() const { return config_; }

 private:
  BuilderConfig config_;
};

}  // namespace ds2rt
