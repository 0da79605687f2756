// .wts text weights: reader (both flavours, detected) and writer (either flavour).
#include <bit>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include "ds2rt/error.h"
#include "ds2rt/importers.h"
#include "importers/wts/wts.h"

namespace ds2rt {

namespace {

bool isDecimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

int64_t decimal(std::string_view s) {
  int64_t v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    const size_t start = i;
    while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool fitsPyTorch(const std::vector<std::string_view>& f) {
  return f.size() >= 2 && isDecimal(f[1]) && static_cast<int64_t>(f.size()) == 2 + decimal(f[1]);
}
bool fitsTensorRT(const std::vector<std::string_view>& f) {
  return f.size() >= 3 && isDecimal(f[1]) && isDecimal(f[2]) && static_cast<int64_t>(f.size()) == 3 + decimal(f[2]);
}
// For a line that fits neither: a short decimal type, then a decimal count that is not an
// 8-digit (padded float32) hex word.
bool looksTensorRT(const std::vector<std::string_view>& f) {
  return f.size() >= 3 && isDecimal(f[1]) && f[1].size() <= 2 && isDecimal(f[2]) && f[2].size() != 8;
}

struct Line {
  size_t number;  // 1-based
  std::vector<std::string_view> fields;
};

// Parses a hex word of at most `digits` digits; false when it is not one.
bool parseHex(std::string_view word, size_t digits, uint32_t& out) {
  if (word.empty() || word.size() > digits) return false;
  uint32_t v = 0;
  for (char c : word) {
    const int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                  : (c >= 'a' && c <= 'f')                   ? c - 'a' + 10
                  : (c >= 'A' && c <= 'F')                   ? c - 'A' + 10
                                                             : -1;
    if (d < 0) return false;
    v = v * 16 + static_cast<uint32_t>(d);
  }
  out = v;
  return true;
}

const char* flavorName(WtsFlavor f) { return f == WtsFlavor::kPyTorch ? "gen_wts.py (name count hex...)" : "TensorRT (name type count hex...)"; }

}  // namespace

namespace wts {

bool looksLikeWts(const std::vector<uint8_t>& head) {
  const std::string_view text(reinterpret_cast<const char*>(head.data()), head.size());
  const size_t eol = text.find('\n');
  if (eol == std::string_view::npos) return false;
  std::string_view first = text.substr(0, eol);
  if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
  const auto f = fields(first);
  if (f.size() != 1 || !isDecimal(f[0])) return false;
  const auto second = fields(text.substr(eol + 1, text.find('\n', eol + 1) - eol - 1));
  return decimal(f[0]) == 0 || (second.size() >= 2 && isDecimal(second[1]));
}

}  // namespace wts

WeightStore readWts(const std::string& path, WtsFlavor* flavor_out) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open '", path, "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();

  std::vector<Line> lines;  // non-blank lines
  size_t number = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    ++number;
    auto f = fields(std::string_view(text).substr(pos, eol - pos));
    if (!f.empty()) lines.push_back({number, std::move(f)});
    pos = eol + 1;
  }
  check(!lines.empty(), "'", path, "': empty file, not a .wts (line 1 must hold the tensor count)");
  const Line& head = lines.front();
  check(head.number == 1 && head.fields.size() == 1 && isDecimal(head.fields[0]), "'", path,
        "' line ", head.number, ": expected the tensor count alone on line 1, found '",
        std::string(text.substr(0, std::min(text.find('\n'), size_t{60}))), "'");
  const int64_t count = decimal(head.fields[0]);
  const size_t held = lines.size() - 1;
  if (static_cast<int64_t>(held) > count)
    fail("'", path, "' line ", lines[static_cast<size_t>(count) + 1].number, ": tensor '",
         std::string(lines[static_cast<size_t>(count) + 1].fields[0]), "' is beyond the declared count of ", count,
         " tensors (the file holds ", held, ")");
  check(static_cast<int64_t>(held) == count, "'", path, "': line 1 declares ", count, " tensors but the file holds ",
        held, " (it ends at line ", number, ")");

  // The flavour: the first line that fits exactly one; else the first line's look.
  std::optional<WtsFlavor> flavor;
  for (size_t i = 1; i < lines.size() && !flavor; ++i) {
    const bool py = fitsPyTorch(lines[i].fields), trt = fitsTensorRT(lines[i].fields);
    if (py != trt) flavor = py ? WtsFlavor::kPyTorch : WtsFlavor::kTensorRT;
  }
  if (!flavor) flavor = lines.size() > 1 && !fitsPyTorch(lines[1].fields) && looksTensorRT(lines[1].fields)
                            ? WtsFlavor::kTensorRT
                            : WtsFlavor::kPyTorch;
  if (flavor_out) *flavor_out = *flavor;

  WeightStore store;
  store.setSource(path);
  for (size_t i = 1; i < lines.size(); ++i) {
    const Line& l = lines[i];
    const std::string name(l.fields[0]);
    const auto where = [&] { return cat("'", path, "' line ", l.number, ", tensor '", name, "'"); };
    const size_t first = *flavor == WtsFlavor::kPyTorch ? 2 : 3;
    check(l.fields.size() >= first, where(), ": expected ", first == 2 ? "name count" : "name type count",
          " then hex values (", flavorName(*flavor), "), found ", l.fields.size(), " fields");
    int type = 0;
    if (*flavor == WtsFlavor::kTensorRT) {
      check(isDecimal(l.fields[1]), where(), ": type '", std::string(l.fields[1]), "' is not a number");
      type = static_cast<int>(decimal(l.fields[1]));
      check(type == 0 || type == 1, where(), ": unknown type ", std::string(l.fields[1]),
            " (read: 0 float32, 1 float16; TensorRT's 2 int8 and 3 int32 are not weights ds2rt reads)");
    }
    const std::string_view count_field = l.fields[first - 1];
    check(isDecimal(count_field), where(), ": value count '", std::string(count_field), "' is not a number");
    const int64_t values = decimal(count_field);
    const int64_t found = static_cast<int64_t>(l.fields.size() - first);
    check(found == values, where(), ": declares ", values, " values but holds ", found);
    check(!store.contains(name), where(), ": a second tensor of this name");
    HostTensor t(type == 0 ? DataType::kFloat32 : DataType::kFloat16, {values});
    for (int64_t k = 0; k < values; ++k) {
      const std::string_view word = l.fields[first + static_cast<size_t>(k)];
      uint32_t bits = 0;
      check(parseHex(word, type == 0 ? 8 : 4, bits), where(), ": value ", k, " '", std::string(word.substr(0, 20)),
            "' is not a ", type == 0 ? "float32 hex word (1-8 hex digits)" : "float16 hex word (1-4 hex digits)");
      if (type == 0)
        t.mutableData<float>()[k] = std::bit_cast<float>(bits);
      else
        t.mutableData<uint16_t>()[k] = static_cast<uint16_t>(bits);
    }
    store.set(name, std::move(t));
  }
  return store;
}

void writeWts(const WeightStore& weights, const std::string& path, WtsFlavor flavor) {
  std::ofstream out(path, std::ios::binary);
  check(out.good(), "cannot write '", path, "'");
  out << weights.tensors().size() << "\n";
  char word[16];
  for (const auto& [name, tensor] : weights.tensors()) {
    check(!name.empty() && fields(name).size() == 1 && fields(name)[0].size() == name.size(), "writing '", path,
          "': tensor name '", name, "' holds white space, which .wts cannot store");
    const HostTensor f = tensor.toFloat32();
    const auto values = f.floats();
    if (flavor == WtsFlavor::kPyTorch) {
      // gen_wts.py: f.write('{} {} '.format(k, len(vr))); per value f.write(' ' + struct.pack('>f', v).hex())
      out << name << " " << values.size() << " ";
      for (const float v : values) {
        std::snprintf(word, sizeof word, " %08x", std::bit_cast<uint32_t>(v));
        out << word;
      }
    } else {
      // dumpTFWts.py --wtsv1: f"{key} 0 {size} ", per value f"{hex(bits)[2:]} " (not zero-padded)
      out << name << " 0 " << values.size() << " ";
      for (const float v : values) {
        std::snprintf(word, sizeof word, "%x ", std::bit_cast<uint32_t>(v));
        out << word;
      }
    }
    out << "\n";
  }
  out.flush();
  check(out.good(), "writing '", path, "' failed");
}

}  // namespace ds2rt
