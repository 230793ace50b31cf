#include "common/base/npy.h"

#include <cstring>
#include <regex>

#include "common/base/atomic_file.h"

namespace nd {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLength = 6;

// The value of 'key' in the header dict, as written (up to the next ',' at depth 0 or '}').
std::string DictValue(const std::string& header, const std::string& key) {
  const std::string quoted[] = {"'" + key + "'", "\"" + key + "\""};
  for (const std::string& q : quoted) {
    size_t at = header.find(q);
    if (at == std::string::npos) continue;
    at = header.find(':', at + q.size());
    if (at == std::string::npos) return "";
    size_t begin = at + 1, end = begin;
    int depth = 0;
    for (; end < header.size(); ++end) {
      const char ch = header[end];
      if (ch == '(' || ch == '[') ++depth;
      if (ch == ')' || ch == ']') --depth;
      if (depth == 0 && (ch == ',' || ch == '}')) break;
      if (depth < 0) break;
    }
    std::string v = header.substr(begin, end - begin);
    const size_t first = v.find_first_not_of(" \t");
    const size_t last = v.find_last_not_of(" \t");
    return first == std::string::npos ? "" : v.substr(first, last - first + 1);
  }
  return "";
}

}  // namespace

StatusOr<NpyMatrix> ReadNpyMatrix(const std::string& path) {
  ND_ASSIGN_OR_RETURN(std::string bytes, ReadFileText(path));
  auto bad = [&](const std::string& why) { return InvalidArgument(path + ": " + why); };
  if (bytes.size() < kMagicLength + 4 || std::memcmp(bytes.data(), kMagic, kMagicLength) != 0)
    return bad("not a .npy file (no \\x93NUMPY magic)");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_length = 0, header_start = 0;
  if (major == 1) {
    header_length = static_cast<unsigned char>(bytes[8]) |
                    (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return bad("truncated header");
    for (int i = 0; i < 4; ++i)
      header_length |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    header_start = 12;
  } else {
    return bad(".npy version " + std::to_string(major) + " is not 1, 2 or 3");
  }
  if (bytes.size() < header_start + header_length) return bad("truncated header");
  const std::string header = bytes.substr(header_start, header_length);
  NpyMatrix m;
  const std::string descr = DictValue(header, "descr");
  size_t width = 0;
  if (descr == "'<f4'" || descr == "'=f4'" || descr == "\"<f4\"") {
    width = 4;
    m.dtype = "float32";
  } else if (descr == "'<f8'" || descr == "'=f8'" || descr == "\"<f8\"") {
    width = 8;
    m.dtype = "float64";
  } else {
    return bad("dtype " + (descr.empty() ? std::string("(none)") : descr) +
               " is not float32 or float64 (little-endian)");
  }
  const std::string order = DictValue(header, "fortran_order");
  if (order != "False")
    return bad("fortran_order " + (order.empty() ? std::string("(none)") : order) +
               ": save the matrix in C order");
  const std::string shape = DictValue(header, "shape");
  static const std::regex kTwoDims(R"(\(\s*(\d+)\s*,\s*(\d+)\s*,?\s*\))");
  std::smatch dims;
  if (!std::regex_match(shape, dims, kTwoDims))
    return bad("shape " + (shape.empty() ? std::string("(none)") : shape) + " is not 2-D");
  m.rows = std::stoll(dims[1].str());
  m.cols = std::stoll(dims[2].str());
  if (m.rows <= 0 || m.cols <= 0 || m.rows > (int64_t{1} << 24) || m.cols > (int64_t{1} << 24))
    return bad("shape " + shape + " has an empty or oversized dimension");
  const size_t count = static_cast<size_t>(m.rows) * static_cast<size_t>(m.cols);
  const size_t data = bytes.size() - header_start - header_length;
  if (data != count * width)
    return bad(std::to_string(data) + " bytes of data, " + std::to_string(count * width) +
               " expected for shape " + shape);
  m.values.resize(count);
  const char* p = bytes.data() + header_start + header_length;
  for (size_t i = 0; i < count; ++i) {
    if (width == 4) {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      m.values[i] = f;
    } else {
      std::memcpy(&m.values[i], p + 8 * i, 8);
    }
  }
  return m;
}

Status WriteNpyMatrix(const std::string& path, const NpyMatrix& m) {
  std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (" +
                       std::to_string(m.rows) + ", " + std::to_string(m.cols) + "), }";
  // Total header (magic + version + length + dict + padding + '\n') a multiple of 64.
  while ((kMagicLength + 4 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string bytes(kMagic, kMagicLength);
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(m.values.data()), m.values.size() * sizeof(double));
  return WriteFileAtomically(path, bytes);
}

}  // namespace nd
