#include "npy.h"

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "ds2rt/error.h"

namespace ds2rt::tools {

HostTensor readNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open '", path, "'");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  check(bytes.size() >= 10 && bytes.compare(0, 6, "\x93NUMPY") == 0, "'", path, "' is not a .npy file");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len, offset;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    offset = 10;
  } else {
    check(bytes.size() >= 12, "'", path, "' is truncated");
    header_len = 0;
    for (int i = 3; i >= 0; --i) header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + i]);
    offset = 12;
  }
  check(offset + header_len <= bytes.size(), "'", path, "' is truncated (header)");
  const std::string header = bytes.substr(offset, header_len);
  std::smatch m;
  check(std::regex_search(header, m, std::regex(R"('descr':\s*'([<|=])([fiu])(\d+)')")), "'", path,
        "': unsupported dtype in header ", header);
  const char kind = m[2].str()[0];
  const int width = std::stoi(m[3]);
  DataType type;
  if (kind == 'f' && width == 4) type = DataType::kFloat32;
  else if (kind == 'f' && width == 8) type = DataType::kFloat64;
  else if (kind == 'f' && width == 2) type = DataType::kFloat16;
  else if (kind == 'i' && width == 4) type = DataType::kInt32;
  else if (kind == 'i' && width == 8) type = DataType::kInt64;
  else fail("'", path, "': unsupported dtype ", m[1].str(), kind, width);
  check(!std::regex_search(header, std::regex(R"('fortran_order':\s*True)")), "'", path,
        "': Fortran-ordered arrays are not supported; save with np.ascontiguousarray");
  check(std::regex_search(header, m, std::regex(R"('shape':\s*\(([^)]*)\))")), "'", path, "': no shape in header");
  Shape shape;
  std::stringstream dims(m[1].str());
  for (std::string d; std::getline(dims, d, ',');)
    if (d.find_first_not_of(" ") != std::string::npos) shape.push_back(std::stoll(d));
  HostTensor t(type, shape);
  const size_t data = offset + header_len;
  check(bytes.size() - data == t.bytes(), "'", path, "' holds ", bytes.size() - data, " data bytes, shape ",
        toString(shape), " needs ", t.bytes());
  std::memcpy(t.mutableData(), bytes.data() + data, t.bytes());
  return t;
}

}  // namespace ds2rt::tools
