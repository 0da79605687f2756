// The pickle virtual machine, opcode by opcode (names as in CPython's Lib/pickletools.py).
// Every read is bounds-checked and every pop checks the stack, so corrupt input gives an Error.
#include "importers/pickle/unpickler.h"

#include <bit>
#include <cstring>
#include <unordered_map>

#include "ds2rt/error.h"
#include "importers/pickle/pickle_globals.h"

namespace ds2rt::pickle {

namespace {

class Machine {
 public:
  Machine(std::span<const uint8_t> bytes, Arena& arena, const std::string& source, const PersistentLoader& loader,
          GlobalFamily family)
      : bytes_(bytes), arena_(arena), source_(source), loader_(loader), family_(family) {}

  Unpickled run() {
    while (true) {
      op_start_ = pos_;
      const uint8_t op = read(1)[0];
      if (op == '.') break;  // STOP
      step(op);
    }
    check(marks_.empty(), where(), "MARK without a matching opcode at STOP");
    Value result = pop();
    check(stack_.empty(), where(), stack_.size(), " values left on the stack at STOP");
    return {result, pos_};
  }

 private:
  std::span<const uint8_t> bytes_;
  Arena& arena_;
  const std::string& source_;
  const PersistentLoader& loader_;
  GlobalFamily family_;
  size_t pos_ = 0, op_start_ = 0;
  std::vector<Value> stack_;
  std::vector<size_t> marks_;  // stack sizes at each MARK
  std::unordered_map<uint64_t, Value> memo_;

  std::string where() const { return cat("'", source_, "': corrupt pickle at byte ", op_start_, ": "); }

  std::span<const uint8_t> read(uint64_t n) {
    check(n <= bytes_.size() - pos_, where(), "needs ", n, " more bytes, only ", bytes_.size() - pos_,
          " left (truncated file?)");
    const auto out = bytes_.subspan(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return out;
  }
  uint64_t readUnsigned(size_t n) {  // little-endian
    const auto b = read(n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
    return v;
  }
  std::string readLine() {
    const size_t start = pos_;
    while (pos_ < bytes_.size() && bytes_[pos_] != '\n') ++pos_;
    check(pos_ < bytes_.size(), where(), "unterminated line (truncated file?)");
    std::string line(reinterpret_cast<const char*>(bytes_.data() + start), pos_ - start);
    ++pos_;
    return line;
  }
  Node* text(Text::Kind kind, uint64_t n) {
    const auto b = read(n);
    return arena_.make(Text{kind, std::string(reinterpret_cast<const char*>(b.data()), b.size())});
  }

  // The stack: values above the last MARK only, as CPython's unpickler checks.
  size_t fence() const { return marks_.empty() ? 0 : marks_.back(); }
  void push(Value v) { stack_.push_back(std::move(v)); }
  Value pop() {
    check(stack_.size() > fence(), where(), "stack underflow");
    Value v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  Value& top() {
    check(stack_.size() > fence(), where(), "stack underflow");
    return stack_.back();
  }
  std::vector<Value> popMark() {  // the values above the last MARK, and the MARK
    check(!marks_.empty(), where(), "no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Value> items(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  std::vector<Value> popN(size_t n) {
    check(stack_.size() >= fence() + n, where(), "stack underflow");
    std::vector<Value> items(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
    stack_.resize(stack_.size() - n);
    return items;
  }

  Node* tuple(std::vector<Value> items) { return arena_.make(Sequence{Sequence::Kind::kTuple, std::move(items)}); }
  Sequence& sequence(const Value& v, const char* opcode) {
    Sequence* s = as<Sequence>(v);
    check(s && s->kind != Sequence::Kind::kTuple, where(), opcode, " on a ", describe(v), ", not a list or set");
    return *s;
  }
  Dict& dict(const Value& v, const char* opcode) {
    Dict* d = as<Dict>(v);
    check(d, where(), opcode, " on a ", describe(v), ", not a dict");
    return *d;
  }
  void setItems(std::vector<Value> items) {
    check(items.size() % 2 == 0, where(), "SETITEMS with an odd number of values");
    Dict& d = dict(top(), "SETITEMS");
    for (size_t i = 0; i < items.size(); i += 2) d.entries.emplace_back(std::move(items[i]), std::move(items[i + 1]));
  }
  void memoize(uint64_t index) { memo_[index] = top(); }
  Value recall(uint64_t index) {
    const auto it = memo_.find(index);
    check(it != memo_.end(), where(), "memo entry ", index, " was never stored");
    return it->second;
  }
  Value integer(uint64_t n) {  // LONG1 / LONG4: n bytes, little-endian two's complement
    const auto b = read(n);
    if (n > 8) return arena_.make(Text{Text::Kind::kBigInt, std::string(b.begin(), b.end())});
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(b[i]) << (8 * i);
    if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    return static_cast<int64_t>(v);
  }
  Value global(const std::string& module, const std::string& name) {
    return resolveGlobal(module, name, family_, arena_, source_);
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80: {  // PROTO
        const uint8_t version = read(1)[0];
        check(version >= 2 && version <= 5, where(), "pickle protocol ", int{version}, " (ds2rt reads 2 to 5)");
        break;
      }
      case 0x95: read(8); break;  // FRAME: a length hint only
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '0': pop(); break;                             // POP
      case '1': popMark(); break;                         // POP_MARK
      case '2': push(top()); break;                       // DUP
      case 'N': push(None{}); break;
      case 0x88: push(true); break;   // NEWTRUE
      case 0x89: push(false); break;  // NEWFALSE
      case 'J': push(static_cast<int64_t>(static_cast<int32_t>(readUnsigned(4)))); break;  // BININT
      case 'K': push(static_cast<int64_t>(readUnsigned(1))); break;                        // BININT1
      case 'M': push(static_cast<int64_t>(readUnsigned(2))); break;                        // BININT2
      case 0x8a: push(integer(readUnsigned(1))); break;                                    // LONG1
      case 0x8b: push(integer(readUnsigned(4))); break;                                    // LONG4
      case 'G': {                                                                          // BINFLOAT (big-endian)
        const auto b = read(8);
        uint64_t bits = 0;
        for (int i = 0; i < 8; ++i) bits = (bits << 8) | b[static_cast<size_t>(i)];
        push(std::bit_cast<double>(bits));
        break;
      }
      case 0x8c: push(text(Text::Kind::kString, readUnsigned(1))); break;  // SHORT_BINUNICODE
      case 'X': push(text(Text::Kind::kString, readUnsigned(4))); break;   // BINUNICODE
      case 0x8d: push(text(Text::Kind::kString, readUnsigned(8))); break;  // BINUNICODE8
      case 'U': push(text(Text::Kind::kString, readUnsigned(1))); break;   // SHORT_BINSTRING (Python 2 str)
      case 'T': push(text(Text::Kind::kString, readUnsigned(4))); break;   // BINSTRING
      case 'C': push(text(Text::Kind::kBytes, readUnsigned(1))); break;    // SHORT_BINBYTES
      case 'B': push(text(Text::Kind::kBytes, readUnsigned(4))); break;    // BINBYTES
      case 0x8e:                                                           // BINBYTES8
      case 0x96: push(text(Text::Kind::kBytes, readUnsigned(8))); break;   // BYTEARRAY8
      case ')': push(tuple({})); break;                                    // EMPTY_TUPLE
      case 't': push(tuple(popMark())); break;                             // TUPLE
      case 0x85: push(tuple(popN(1))); break;                              // TUPLE1
      case 0x86: push(tuple(popN(2))); break;                              // TUPLE2
      case 0x87: push(tuple(popN(3))); break;                              // TUPLE3
      case ']': push(arena_.make(Sequence{Sequence::Kind::kList, {}})); break;  // EMPTY_LIST
      case 'l': push(arena_.make(Sequence{Sequence::Kind::kList, popMark()})); break;  // LIST
      case 0x8f: push(arena_.make(Sequence{Sequence::Kind::kSet, {}})); break;  // EMPTY_SET
      case 0x91: push(arena_.make(Sequence{Sequence::Kind::kSet, popMark()})); break;  // FROZENSET
      case 'a': {  // APPEND
        Value v = pop();
        sequence(top(), "APPEND").items.push_back(std::move(v));
        break;
      }
      case 'e':     // APPENDS
      case 0x90: {  // ADDITEMS
        std::vector<Value> items = popMark();
        auto& target = sequence(top(), op == 'e' ? "APPENDS" : "ADDITEMS").items;
        target.insert(target.end(), items.begin(), items.end());
        break;
      }
      case '}': push(arena_.make(Dict{})); break;  // EMPTY_DICT
      case 'd': {                                  // DICT
        std::vector<Value> items = popMark();
        push(arena_.make(Dict{}));
        setItems(std::move(items));
        break;
      }
      case 's': {  // SETITEM
        std::vector<Value> kv = popN(2);
        setItems(std::move(kv));
        break;
      }
      case 'u': setItems(popMark()); break;  // SETITEMS
      case 'q': memoize(readUnsigned(1)); break;  // BINPUT
      case 'r': memoize(readUnsigned(4)); break;  // LONG_BINPUT
      case 0x94: memoize(memo_.size()); break;    // MEMOIZE
      case 'h': push(recall(readUnsigned(1))); break;  // BINGET
      case 'j': push(recall(readUnsigned(4))); break;  // LONG_BINGET
      case 'c': {                                      // GLOBAL
        const std::string module = readLine();
        const std::string name = readLine();
        push(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        const Value name = pop(), module = pop();
        const auto m = asString(module), n = asString(name);
        check(m && n, where(), "STACK_GLOBAL of a ", describe(module), " and a ", describe(name), ", not two str");
        push(global(std::string(*m), std::string(*n)));
        break;
      }
      case 'R': {  // REDUCE
        const Value args = pop();
        const Value callable = pop();
        const Sequence* a = as<Sequence>(args);
        check(a && a->kind == Sequence::Kind::kTuple, where(), "REDUCE with ", describe(args), " arguments, not a tuple");
        push(callGlobal(callable, a->items, arena_, source_));
        break;
      }
      case 0x81:    // NEWOBJ
      case 0x92: {  // NEWOBJ_EX
        if (op == 0x92) pop();  // kwargs
        const Value args = pop();
        const Value cls = pop();
        const Sequence* a = as<Sequence>(args);
        check(a && a->kind == Sequence::Kind::kTuple, where(), "NEWOBJ with ", describe(args), " arguments, not a tuple");
        push(newObject(cls, a->items, arena_, source_));
        break;
      }
      case 'b': {  // BUILD
        Value state = pop();
        buildObject(top(), std::move(state), source_);
        break;
      }
      case 'Q': {  // BINPERSID
        const Value pid = pop();
        check(static_cast<bool>(loader_), where(), "a persistent id (a tensor storage) where none may be");
        push(loader_(pid, arena_));
        break;
      }
      case 0x82: case 0x83: case 0x84:  // EXT1/2/4: the copyreg extension registry names callables
        fail("refusing to load '", source_, "': the checkpoint names a global through the copyreg extension "
             "registry; ds2rt only loads tensors and plain containers");
      default:
        fail(where(), "unsupported opcode 0x", std::hex, int{op}, std::dec,
             op >= 0x20 && op < 0x7f ? cat(" ('", static_cast<char>(op), "')") : std::string(),
             " (ds2rt reads pickle protocols 2 to 5 as torch.save writes them)");
    }
  }
};

}  // namespace

Unpickled unpickle(std::span<const uint8_t> bytes, Arena& arena, const std::string& source,
                   const PersistentLoader& persistent_load, GlobalFamily family) {
  return Machine(bytes, arena, source, persistent_load, family).run();
}

}  // namespace ds2rt::pickle
