// What calling, instantiating or building an allowlisted global means, emulated in C++.
#include "importers/pickle/pickle_globals.h"

#include <algorithm>

#include "ds2rt/error.h"

namespace ds2rt::pickle {

namespace {

using K = GlobalKind;

const Global& asGlobal(const Value& value, const std::string& source, const char* opcode) {
  const Global* g = as<Global>(value);
  if (!g) fail("'", source, "': corrupt pickle: ", opcode, " of a ", describe(value), ", not of a class or function");
  return *g;
}

void checkArgs(bool ok, const Global& g, const std::string& source, const char* expected) {
  check(ok, "'", source, "': corrupt pickle: ", g.qualifiedName(), " called with arguments other than ", expected);
}

Shape intTuple(const Value& value, const Global& g, const std::string& source) {
  const Sequence* seq = as<Sequence>(value);
  checkArgs(seq && seq->kind == Sequence::Kind::kTuple && seq->items.size() <= 64, g, source,
            "(storage, offset, size, stride, ...) with size and stride tuples of at most 64 ints");
  Shape out;
  for (const Value& v : seq->items) {
    const auto i = asInt(v);
    checkArgs(i && *i >= 0, g, source, "non-negative sizes and strides");
    out.push_back(*i);
  }
  return out;
}

Value tensorRef(const Global& g, const std::vector<Value>& args, Arena& arena, const std::string& source) {
  const bool v3 = g.name == "_rebuild_tensor_v3";
  checkArgs(args.size() >= (v3 ? 7u : 4u) && args.size() <= 8, g, source, "(storage, offset, size, stride, ...)");
  const StorageRef* storage = as<StorageRef>(args[0]);
  const auto offset = asInt(args[1]);
  checkArgs(storage && offset && *offset >= 0, g, source, "a storage and a non-negative offset");
  TensorRef t{storage, storage->type, *offset, intTuple(args[2], g, source), intTuple(args[3], g, source)};
  checkArgs(t.size.size() == t.stride.size(), g, source, "size and stride of the same rank");
  if (v3) {
    t.dtype = as<Global>(args[6]);
    checkArgs(t.dtype && t.dtype->kind == K::kDtype, g, source, "a torch dtype as seventh argument");
  }
  return arena.make(std::move(t));
}

// _codecs.encode(text, "latin1"): each code point of the UTF-8 text becomes one byte.
Value latin1Bytes(const Global& g, const std::vector<Value>& args, Arena& arena, const std::string& source) {
  const auto encoding = args.size() == 2 ? asString(args[1]) : std::nullopt;
  checkArgs(asString(args.empty() ? Value{} : args[0]) && (encoding == "latin1" || encoding == "latin-1"), g, source,
            "(str, 'latin1')");
  const std::string_view text = asString(args[0]).value_or("");
  std::string bytes;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      bytes += static_cast<char>(c), i += 1;
    } else {
      const bool two = (c & 0xe0) == 0xc0 && c <= 0xc3 && i + 1 < text.size();
      checkArgs(two, g, source, "text of code points below 256");
      bytes += static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3f)), i += 2;
    }
  }
  return arena.make(Text{Text::Kind::kBytes, std::move(bytes)});
}

Value collectionFrom(const Global& g, const std::vector<Value>& args, Arena& arena, const std::string& source) {
  const Sequence* items = args.empty() ? nullptr : as<Sequence>(args[0]);
  if (g.kind == K::kTorchSize) {
    checkArgs(args.size() == 1 && items, g, source, "one sequence");
    return arena.make(Sequence{Sequence::Kind::kTuple, items->items});
  }
  if (g.kind == K::kSet) {
    checkArgs(args.empty() || (args.size() == 1 && items), g, source, "() or one sequence");
    return arena.make(Sequence{Sequence::Kind::kSet, items ? items->items : std::vector<Value>{}});
  }
  // OrderedDict() / OrderedDict([(k, v), ...]) / defaultdict(factory)
  Dict dict;
  if (g.name == "OrderedDict" && args.size() == 1 && items) {
    for (const Value& item : items->items) {
      const Sequence* pair = as<Sequence>(item);
      checkArgs(pair && pair->items.size() == 2, g, source, "a sequence of (key, value) pairs");
      dict.entries.emplace_back(pair->items[0], pair->items[1]);
    }
  } else {
    checkArgs(args.size() <= 1, g, source, g.name == "OrderedDict" ? "() or [(key, value), ...]" : "(factory)");
  }
  return arena.make(std::move(dict));
}

// numpy.dtype(code, align, copy), as numpy's dtype.__reduce__ writes it.
Value numpyDtype(const Global& g, const std::vector<Value>& args, Arena& arena, const std::string& source) {
  const Text* code = args.empty() ? nullptr : as<Text>(args[0]);
  checkArgs(code && code->kind == Text::Kind::kString && args.size() <= 3 && code->data.size() <= 8, g, source,
            "(type code, align, copy)");
  return arena.make(NumpyDtype{code->data});
}

// ndarray.__reduce__: _reconstruct(numpy.ndarray, (0,), b'b') makes an empty array, BUILD fills it.
Value numpyArray(const Global& g, const std::vector<Value>& args, Arena& arena, const std::string& source) {
  const Global* cls = args.size() == 3 ? as<Global>(args[0]) : nullptr;
  checkArgs(cls && cls->name == "ndarray", g, source, "(numpy.ndarray, shape, type code)");
  return arena.make(NumpyArray{});
}

// dtype state: (version, byte order, subarray, names, fields, elsize, alignment, flags); only
// plain types (no fields, no subarray) have a meaning here.
void buildDtype(NumpyDtype& dtype, const Value& state, const std::string& source) {
  const Sequence* s = as<Sequence>(state);
  const auto order = s && s->items.size() >= 2 ? asString(s->items[1]) : std::nullopt;
  check(order && order->size() == 1, "'", source, "': corrupt pickle: numpy.dtype state without a byte order");
  for (size_t i = 2; i < std::min<size_t>(s->items.size(), 5); ++i)
    check(isNone(s->items[i]), "'", source, "': a numpy array of a structured or sub-array dtype ('", dtype.code,
          "'); ds2rt reads arrays of plain numbers only");
  dtype.byte_order = (*order)[0];
}

// ndarray state: (version, shape, dtype, is_fortran, raw bytes); a list instead of bytes is an
// array of Python objects.
void buildArray(NumpyArray& array, const Value& state, const std::string& source) {
  const Sequence* s = as<Sequence>(state);
  check(s && s->items.size() == 5, "'", source, "': corrupt pickle: numpy.ndarray state is ", describe(state),
        ", not (version, shape, dtype, is_fortran, data)");
  const Sequence* shape = as<Sequence>(s->items[1]);
  const NumpyDtype* dtype = as<NumpyDtype>(s->items[2]);
  check(shape && shape->items.size() <= 64 && dtype, "'", source,
        "': corrupt pickle: numpy.ndarray state without a shape tuple and a dtype");
  array.shape.clear();
  for (const Value& v : shape->items) {
    const auto n = asInt(v);
    check(n && *n >= 0, "'", source, "': corrupt pickle: numpy.ndarray shape of ", describe(v));
    array.shape.push_back(*n);
  }
  const Text* data = as<Text>(s->items[4]);
  check(!as<Sequence>(s->items[4]), "'", source, "': a numpy array of Python objects (dtype '", dtype->code,
        "'); ds2rt reads arrays of plain numbers only");
  check(data && data->kind != Text::Kind::kBigInt, "'", source, "': corrupt pickle: numpy.ndarray data is ",
        describe(s->items[4]), ", not bytes");
  const auto* fortran = std::get_if<bool>(&s->items[3]);
  const auto fortran_int = asInt(s->items[3]);
  check(fortran || fortran_int, "'", source, "': corrupt pickle: numpy.ndarray is_fortran is ", describe(s->items[3]));
  array.fortran_order = fortran ? *fortran : *fortran_int != 0;
  array.dtype = dtype;
  array.data = data;
  array.built = true;
}

}  // namespace

Value callGlobal(const Value& callable, std::vector<Value> args, Arena& arena, const std::string& source) {
  const Global& g = asGlobal(callable, source, "REDUCE");
  switch (g.kind) {
    case K::kRebuildTensor: return tensorRef(g, args, arena, source);
    case K::kRebuildParameter:
      checkArgs(args.size() >= 1 && as<TensorRef>(args[0]), g, source, "(tensor, requires_grad, hooks)");
      return args[0];
    case K::kRebuildFromType: {  // (func, type, args, state): func(*args)
      const Sequence* inner = args.size() == 4 ? as<Sequence>(args[2]) : nullptr;
      const Global* type = args.size() == 4 ? as<Global>(args[1]) : nullptr;
      checkArgs(inner && type && type->kind == K::kInert, g, source, "(function, tensor type, args, state)");
      const Global& func = asGlobal(args[0], source, "REDUCE");
      checkArgs(func.kind == K::kRebuildTensor || func.kind == K::kRebuildParameter, g, source,
                "a tensor-rebuilding function");
      return callGlobal(args[0], inner->items, arena, source);
    }
    case K::kOrderedDict:
    case K::kSet:
    case K::kTorchSize: return collectionFrom(g, args, arena, source);
    case K::kCodecsEncode: return latin1Bytes(g, args, arena, source);
    case K::kNumpyReconstruct: return numpyArray(g, args, arena, source);
    case K::kNumpyDtype: return numpyDtype(g, args, arena, source);
    case K::kGetattr: {  // getattr(EnumClass, "member") only: how protocol < 4 names an enum member
      const Global* type = args.size() == 2 ? as<Global>(args[0]) : nullptr;
      const auto member = args.size() == 2 ? asString(args[1]) : std::nullopt;
      if (!type || type->kind != K::kEnumClass || !member)
        refuse(source, "calls builtins.getattr on " + (args.empty() ? std::string("nothing") : describe(args[0])),
               g.module);
      return arena.make(Object{type, {}, None{}, std::string(*member)});
    }
    case K::kEnumClass:  // EnumClass(value): the member with that value
      checkArgs(args.size() == 1, g, source, "one value");
      return arena.make(Object{&g, std::move(args), None{}, ""});
    default:
      if (g.module == "_operator" && g.name == "getitem")  // typing.Tuple[float, ...]: recorded, not evaluated
        return arena.make(Object{&g, std::move(args), None{}, ""});
      refuse(source, "calls " + g.qualifiedName(), g.module);
  }
}

Value newObject(const Value& cls, std::vector<Value> args, Arena& arena, const std::string& source) {
  const Global& g = asGlobal(cls, source, "NEWOBJ");
  if (g.kind == K::kOrderedDict) return arena.make(Dict{});
  if (g.kind != K::kContainerClass) refuse(source, "creates an object of " + g.qualifiedName(), g.module);
  return arena.make(Object{&g, std::move(args), None{}, ""});
}

void buildObject(const Value& target, Value state, const std::string& source) {
  if (Object* object = as<Object>(target); object && object->type->kind == K::kContainerClass) {
    object->state = std::move(state);
    return;
  }
  if (NumpyArray* array = as<NumpyArray>(target)) return buildArray(*array, state, source);
  if (NumpyDtype* dtype = as<NumpyDtype>(target)) return buildDtype(*dtype, state, source);
  if (as<TensorRef>(target) || as<Dict>(target)) return;  // Parameter / OrderedDict attributes
  fail("'", source, "': corrupt pickle: BUILD on a ", describe(target));
}

}  // namespace ds2rt::pickle
