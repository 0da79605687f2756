// The restricted unpickler's allowlist: which globals a checkpoint may name, and what calling,
// instantiating or building each of them means. Everything is emulated in C++; nothing runs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "importers/pickle/pickle_value.h"

namespace ds2rt::pickle {

// The global module.name if `family` (or every family) allows it (pickle_allowlist.cpp).
std::optional<Global> lookupGlobal(const std::string& module, const std::string& name, GlobalFamily family);
// Throws "refusing to load '<source>': the checkpoint <what>; ds2rt only loads tensors and plain containers ...".
[[noreturn]] void refuse(const std::string& source, const std::string& what, const std::string& module);

// GLOBAL / STACK_GLOBAL: the allowlisted global, or an enum member named "Enum.member".
// Anything else throws: "refusing to load '<source>': the checkpoint references os.system; ...".
Value resolveGlobal(const std::string& module, const std::string& name, GlobalFamily family, Arena& arena,
                    const std::string& source);

// REDUCE: callable(*args), for the few callables ds2rt emulates (tensor rebuilding,
// OrderedDict, set, enum members, ...). Any other call throws naming the callable.
Value callGlobal(const Value& callable, std::vector<Value> args, Arena& arena, const std::string& source);

// NEWOBJ / NEWOBJ_EX: cls.__new__(cls, *args), for inert container classes (omegaconf).
Value newObject(const Value& cls, std::vector<Value> args, Arena& arena, const std::string& source);

// BUILD: sets an object's state (omegaconf containers, numpy arrays and dtypes); ignored for
// tensors and dicts.
void buildObject(const Value& target, Value state, const std::string& source);

}  // namespace ds2rt::pickle
