// torch.save's persistent ids for storages:
//   zip archive:    ('storage', storage_type, key, location, numel)
//   legacy format:  ('storage', storage_type, key, location, numel, view_metadata)
#pragma once

#include <string>

#include "importers/pickle/pickle_value.h"

namespace ds2rt::pytorch {

// The reader works on the values of the restricted unpickler (importers/pickle).
using namespace ds2rt::pickle;

StorageRef parseStorageId(const Value& pid, const std::string& source, bool legacy);

}  // namespace ds2rt::pytorch
