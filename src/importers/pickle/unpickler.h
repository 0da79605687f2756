// A restricted unpickler for model files (PyTorch checkpoints, Paddle .pdparams): pickle protocols
// 2 to 5, only the globals of pickle_allowlist.cpp that the file's family may name, no code ever
// run. Malformed input gives ds2rt::Error, never a crash.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>

#include "importers/pickle/pickle_value.h"

namespace ds2rt::pickle {

// Turns a persistent id (BINPERSID; torch's storage tuples) into the value standing for it.
using PersistentLoader = std::function<Value(const Value& pid, Arena& arena)>;

struct Unpickled {
  Value value;
  size_t consumed = 0;  // bytes up to and including STOP (the legacy format has more after it)
};

// Reads one pickle from the start of `bytes`. `source` names it in errors ("model.pth: archive/data.pkl").
Unpickled unpickle(std::span<const uint8_t> bytes, Arena& arena, const std::string& source,
                   const PersistentLoader& persistent_load = {}, GlobalFamily family = GlobalFamily::kTorch);

}  // namespace ds2rt::pickle
