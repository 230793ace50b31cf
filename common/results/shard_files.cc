#include "common/results/shard_files.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "common/base/atomic_file.h"
#include "common/base/digest.h"
#include "common/maths/top_quantile.h"
#include "common/results/result_files.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

constexpr char kTailsMagic[4] = {'N', 'D', 'T', 'L'};
constexpr uint32_t kTailsVersion = 1;

Status WriteMakingDirs(const std::string& path, const std::string& bytes) {
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec) return IoError(fs::path(path).parent_path().string() + ": " + ec.message());
  return WriteFileAtomically(path, bytes);
}

void PutU32(std::string* out, uint32_t v) {
  for (int k = 0; k < 4; ++k) out->push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int k = 0; k < 8; ++k) out->push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}

// A cursor over a tails file that reports truncation once.
struct Reader {
  const std::string& bytes;
  size_t at = 0;
  bool short_read = false;
  uint64_t Get(int n) {
    if (at + n > bytes.size()) {
      short_read = true;
      at = bytes.size();
      return 0;
    }
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= uint64_t{static_cast<unsigned char>(bytes[at + k])} << (8 * k);
    at += n;
    return v;
  }
};

std::string Hex64(double d) {
  uint64_t bits;
  std::memcpy(&bits, &d, 8);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, bits);
  return buf;
}

std::string Real(double d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

// One parsed line of a counts or forward file: its key and the rest.
struct Line {
  size_t number = 0;
  std::string key, rest;
};

std::vector<Line> SplitLines(const std::string& text) {
  std::vector<Line> lines;
  size_t start = 0, number = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    ++number;
    size_t space = line.find(' ');
    lines.push_back({number, line.substr(0, space),
                     space == std::string::npos ? std::string() : line.substr(space + 1)});
    start = end + 1;
  }
  return lines;
}

// Walks the lines of a record in the required key order.
class LineCursor {
 public:
  LineCursor(std::vector<Line> lines, std::string name)
      : lines_(std::move(lines)), name_(std::move(name)) {}

  // The next line, which must have `key`.
  StatusOr<std::string> Expect(const std::string& key) {
    if (next_ >= lines_.size())
      return DataLoss(name_ + ": ends before '" + key + "' (line " +
                      std::to_string(lines_.size() + 1) + ")");
    const Line& l = lines_[next_];
    if (l.key != key)
      return DataLoss(name_ + ":" + std::to_string(l.number) + ": expected '" + key + "', got '" +
                      l.key + "'");
    ++next_;
    return l.rest;
  }
  bool Peek(const std::string& key) const {
    return next_ < lines_.size() && lines_[next_].key == key;
  }
  Status Fail(const std::string& key, const std::string& why) const {
    const size_t line = next_ == 0 ? 1 : lines_[next_ - 1].number;
    return DataLoss(name_ + ":" + std::to_string(line) + ": " + key + ": " + why);
  }
  Status ExpectEnd() {
    ND_RETURN_IF_ERROR(Expect("end").status());
    if (next_ != lines_.size())
      return DataLoss(name_ + ":" + std::to_string(lines_[next_].number) + ": text after 'end'");
    return Status::Ok();
  }

 private:
  std::vector<Line> lines_;
  std::string name_;
  size_t next_ = 0;
};

// Exactly `n` signed integers (n < 0: any number).
Status ParseInts(const std::string& rest, long n, std::vector<int64_t>* out) {
  out->clear();
  const char* p = rest.c_str();
  while (*p) {
    if (*p == ' ') {
      ++p;
      continue;
    }
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(p, &end, 10);
    if (end == p || errno || (*end && *end != ' '))
      return InvalidArgument("'" + std::string(p, std::min<size_t>(20, std::strlen(p))) +
                             "' is not an integer");
    out->push_back(v);
    p = end;
  }
  if (n >= 0 && out->size() != static_cast<size_t>(n))
    return InvalidArgument(std::to_string(out->size()) + " values, expected " + std::to_string(n));
  return Status::Ok();
}

Status ParseReal(const std::string& rest, double* out) {
  char* end = nullptr;
  *out = std::strtod(rest.c_str(), &end);
  if (rest.empty() || *end) return InvalidArgument("'" + rest + "' is not a number");
  return Status::Ok();
}

// "<row> <reason>".
Status ParseSkip(const std::string& rest, uint32_t* row, std::string* reason) {
  size_t space = rest.find(' ');
  std::vector<int64_t> v;
  ND_RETURN_IF_ERROR(ParseInts(rest.substr(0, space), 1, &v));
  if (v[0] < 0 || v[0] > UINT32_MAX) return InvalidArgument("row out of range");
  *row = static_cast<uint32_t>(v[0]);
  *reason = space == std::string::npos ? std::string() : rest.substr(space + 1);
  return Status::Ok();
}

std::string OneLine(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

}  // namespace

// ---- Layout ----

std::string ShardFolder(const std::string& dir, int shard) {
  return (fs::path(dir) / ("shard-" + std::to_string(shard))).string();
}
std::string TailsFilePath(const std::string& dir, int shard, const std::string& layer) {
  return (fs::path(ShardFolder(dir, shard)) / "tails" / (layer + ".ndtl")).string();
}
std::string ForwardRecordPath(const std::string& dir, int shard) {
  return (fs::path(ShardFolder(dir, shard)) / "forward.txt").string();
}
std::string CountsFilePath(const std::string& dir, int shard, const std::string& layer, double q,
                           bool several_quantiles) {
  return (fs::path(LayerResultDir((fs::path(ShardFolder(dir, shard)) / "counts").string(), layer, q,
                                  several_quantiles)) /
          "counts.txt")
      .string();
}
std::string MergedThresholdsPath(const std::string& dir, const std::string& layer, double q,
                                 bool several_quantiles) {
  return (fs::path(LayerResultDir((fs::path(dir) / "thresholds").string(), layer, q,
                                  several_quantiles)) /
          "thresholds.csv")
      .string();
}

// ---- Tails ----

std::string EncodeTails(const UnitTails& t) {
  std::string out(kTailsMagic, 4);
  PutU32(&out, kTailsVersion);
  PutU32(&out, static_cast<uint32_t>(t.units));
  PutU32(&out, static_cast<uint32_t>(t.h));
  PutU32(&out, static_cast<uint32_t>(t.w));
  PutU32(&out, static_cast<uint32_t>(t.layer.size()));
  out += t.layer;
  PutU64(&out, t.images);
  PutU64(&out, t.max_images);
  PutU64(&out, t.keep);
  for (int u = 0; u < t.units; ++u) {
    PutU64(&out, static_cast<uint64_t>(t.counts[u]));
    PutU64(&out, t.tops[u].size());
    for (float v : t.tops[u]) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      PutU32(&out, bits);
    }
  }
  PutU32(&out, Crc32(out));
  return out;
}

StatusOr<UnitTails> DecodeTails(const std::string& bytes, const std::string& name) {
  if (bytes.size() < 28 || std::memcmp(bytes.data(), kTailsMagic, 4) != 0)
    return DataLoss(name + ": not a tails file (magic \"NDTL\" expected)");
  const uint32_t stored = static_cast<uint32_t>(Reader{bytes, bytes.size() - 4}.Get(4));
  if (Crc32(bytes.data(), bytes.size() - 4) != stored)
    return DataLoss(name + ": CRC mismatch (damaged or truncated)");
  Reader r{bytes, 4};
  if (uint64_t v = r.Get(4); v != kTailsVersion)
    return DataLoss(name + ": format version " + std::to_string(v) + ", this reader knows 1");
  UnitTails t;
  t.units = static_cast<int>(r.Get(4));
  t.h = static_cast<int>(r.Get(4));
  t.w = static_cast<int>(r.Get(4));
  const uint64_t name_size = r.Get(4);
  if (name_size > bytes.size()) return DataLoss(name + ": layer name length out of range");
  if (r.at + name_size <= bytes.size()) t.layer = bytes.substr(r.at, name_size);
  r.at += name_size;
  t.images = r.Get(8);
  t.max_images = r.Get(8);
  t.keep = r.Get(8);
  const size_t end = bytes.size() - 4;
  for (int u = 0; u < t.units && !r.short_read; ++u) {
    const int64_t count = static_cast<int64_t>(r.Get(8));
    const uint64_t held = r.Get(8);
    if (count < 0 || held > std::min<uint64_t>(count, t.keep) || held > (end - r.at) / 4)
      return DataLoss(name + ": unit " + std::to_string(u) + ": " + std::to_string(held) +
                      " values held of " + std::to_string(count) + " seen, keep " +
                      std::to_string(t.keep));
    std::vector<float> top(held);
    for (uint64_t k = 0; k < held; ++k) {
      const uint32_t bits = static_cast<uint32_t>(r.Get(4));
      std::memcpy(&top[k], &bits, 4);
      if (k > 0 && !(top[k] <= top[k - 1]))
        return DataLoss(name + ": unit " + std::to_string(u) + ": values not in descending order");
    }
    t.counts.push_back(count);
    t.tops.push_back(std::move(top));
  }
  if (r.short_read || r.at != end) return DataLoss(name + ": size does not match its header");
  return t;
}

Status WriteTailsFile(const std::string& path, const UnitTails& tails) {
  return WriteMakingDirs(path, EncodeTails(tails));
}

StatusOr<UnitTails> ReadTailsFile(const std::string& path) {
  ND_ASSIGN_OR_RETURN(std::string bytes, ReadFileText(path));
  return DecodeTails(bytes, path);
}

StatusOr<UnitTails> MergeTails(const std::vector<UnitTails>& parts) {
  // A slice without images (more shards than rows) has no shape: it adds nothing.
  std::vector<const UnitTails*> used;
  for (const UnitTails& t : parts)
    if (t.images > 0) used.push_back(&t);
  if (used.empty()) return InvalidArgument("tails: no images in any part");
  UnitTails out = *used[0];
  for (size_t p = 1; p < used.size(); ++p) {
    const UnitTails& t = *used[p];
    if (t.layer != out.layer || t.units != out.units || t.h != out.h || t.w != out.w ||
        t.keep != out.keep || t.max_images != out.max_images)
      return InvalidArgument("tails of layer '" + t.layer + "' (part " + std::to_string(p) + ": " +
                             std::to_string(t.units) + "x" + std::to_string(t.h) + "x" +
                             std::to_string(t.w) + ", keep " + std::to_string(t.keep) +
                             ") do not match layer '" + out.layer + "' (" +
                             std::to_string(out.units) + "x" + std::to_string(out.h) + "x" +
                             std::to_string(out.w) + ", keep " + std::to_string(out.keep) + ")");
    out.images += t.images;
    for (int u = 0; u < out.units; ++u) {
      out.counts[u] += t.counts[u];
      std::vector<float>& top = out.tops[u];
      top.insert(top.end(), t.tops[u].begin(), t.tops[u].end());
    }
  }
  for (auto& top : out.tops) {
    std::sort(top.begin(), top.end(), std::greater<float>());
    if (top.size() > out.keep) top.resize(out.keep);
  }
  return out;
}

StatusOr<std::vector<double>> ThresholdsFromTails(const UnitTails& tails, double q) {
  std::vector<double> out(tails.units, std::numeric_limits<double>::quiet_NaN());
  for (int u = 0; u < tails.units; ++u) {
    const int64_t n = tails.counts[u];
    if (n == 0) continue;  // all non-finite: NaN, as calibrate
    const int64_t needed = TopValuesNeeded(n, q);
    if (static_cast<int64_t>(tails.tops[u].size()) < needed)
      return FailedPrecondition("tails of layer '" + tails.layer + "' hold " +
                                std::to_string(tails.tops[u].size()) + " values of unit " +
                                std::to_string(u) + ", quantile " + Real(q) + " needs " +
                                std::to_string(needed) +
                                " (tails from a run with a smaller largest quantile: run the "
                                "forward phase again)");
    out[u] = LinearQuantileFromTop(tails.tops[u], n, 1.0 - q);
  }
  return out;
}

// ---- Counts ----

ShardCounts CountsFromReport(const ScoreReport& report, const std::string& layer, double q,
                             int shard, int shards, int64_t rows, int64_t forward_images,
                             std::vector<std::pair<uint32_t, std::string>> upstream_skipped) {
  ShardCounts c;
  const IouTally& t = *report.tally;
  c.layer = layer;
  c.quantile = q;
  c.shard = shard;
  c.shards = shards;
  c.units = t.units();
  c.num_labels = t.num_labels();
  c.num_categories = t.num_categories();
  c.rule = t.rule();
  c.thresholds = t.thresholds();
  c.images_scored = report.images_scored;
  c.rows = rows;
  c.forward_images = forward_images;
  c.repeated_label_pixels = report.repeated_label_pixels;
  c.label_read_failures = report.label_read_failures;
  c.fetch_failures = report.fetch_failures;
  c.masks = report.masks;
  c.cpu_seconds = report.cpu_seconds;
  c.upstream_skipped = std::move(upstream_skipped);
  c.skipped = report.skipped;
  c.g = t.label_pixels_array();
  c.i = t.intersection_array();
  c.u = t.union_array();
  return c;
}

std::string FormatCounts(const ShardCounts& c) {
  std::string s = "nd-shard-counts 1\n";
  s += "layer " + c.layer + "\n";
  s += "quantile " + Real(c.quantile) + "\n";
  s += "shard " + std::to_string(c.shard) + " " + std::to_string(c.shards) + "\n";
  s += "shape " + std::to_string(c.units) + " " + std::to_string(c.num_labels) + " " +
       std::to_string(c.num_categories) + " " + UnionRuleName(c.rule) + "\n";
  s += "thresholds";
  for (double t : c.thresholds) s += " " + Hex64(t);
  s += "\n";
  s += "images_scored " + std::to_string(c.images_scored) + "\n";
  s += "rows " + std::to_string(c.rows) + "\n";
  s += "forward_images " + std::to_string(c.forward_images) + "\n";
  s += "repeated_label_pixels " + std::to_string(c.repeated_label_pixels) + "\n";
  s += "label_read_failures " + std::to_string(c.label_read_failures) + "\n";
  s += "fetch_failures " + std::to_string(c.fetch_failures) + "\n";
  s += "masks " + std::to_string(c.masks.maps) + " " + std::to_string(c.masks.maps_skipped_max) +
       " " + std::to_string(c.masks.cells_zero) + " " + std::to_string(c.masks.cells_one) + " " +
       std::to_string(c.masks.cells_mixed) + "\n";
  s += "cpu_seconds " + Real(c.cpu_seconds) + "\n";
  for (const auto& [row, reason] : c.upstream_skipped)
    s += "upstream_skip " + std::to_string(row) + " " + OneLine(reason) + "\n";
  for (const SkippedImage& k : c.skipped)
    s += "score_skip " + std::to_string(k.row) + " " + OneLine(k.reason) + "\n";
  auto ints = [&](const std::string& head, const int64_t* v, size_t n) {
    std::string line = head;
    for (size_t k = 0; k < n; ++k) line += " " + std::to_string(v[k]);
    return line + "\n";
  };
  s += ints("g", c.g.data(), c.g.size());
  for (int u = 0; u < c.units; ++u)
    s += ints("i " + std::to_string(u), c.i.data() + static_cast<size_t>(u) * c.num_labels,
              c.num_labels);
  for (int u = 0; u < c.units; ++u)
    s += ints("u " + std::to_string(u), c.u.data() + static_cast<size_t>(u) * c.num_categories,
              c.num_categories);
  s += "end\n";
  return s;
}

StatusOr<ShardCounts> ParseCounts(const std::string& text, const std::string& name) {
  LineCursor in(SplitLines(text), name);
  ShardCounts c;
  std::vector<int64_t> v;
  ND_ASSIGN_OR_RETURN(std::string head, in.Expect("nd-shard-counts"));
  if (head != "1") return in.Fail("nd-shard-counts", "version '" + head + "', expected 1");
  ND_ASSIGN_OR_RETURN(c.layer, in.Expect("layer"));
  if (c.layer.empty()) return in.Fail("layer", "empty");
  ND_ASSIGN_OR_RETURN(std::string rest, in.Expect("quantile"));
  if (Status s = ParseReal(rest, &c.quantile); !s.ok()) return in.Fail("quantile", s.message());
  ND_ASSIGN_OR_RETURN(rest, in.Expect("shard"));
  if (Status s = ParseInts(rest, 2, &v); !s.ok()) return in.Fail("shard", s.message());
  c.shard = static_cast<int>(v[0]);
  c.shards = static_cast<int>(v[1]);
  ND_ASSIGN_OR_RETURN(rest, in.Expect("shape"));
  {
    const size_t last = rest.rfind(' ');
    if (last == std::string::npos) return in.Fail("shape", "expected units labels categories rule");
    auto rule = ParseUnionRule(rest.substr(last + 1));
    if (!rule.ok()) return in.Fail("shape", rule.status().message());
    c.rule = *rule;
    if (Status s = ParseInts(rest.substr(0, last), 3, &v); !s.ok())
      return in.Fail("shape", s.message());
    if (v[0] <= 0 || v[1] < 0 || v[2] < 0 || v[0] > (1 << 24) || v[1] > (1 << 24) ||
        v[2] > (1 << 16))
      return in.Fail("shape", "out of range");
    c.units = static_cast<int>(v[0]);
    c.num_labels = static_cast<int>(v[1]);
    c.num_categories = static_cast<int>(v[2]);
  }
  ND_ASSIGN_OR_RETURN(rest, in.Expect("thresholds"));
  {
    std::istringstream words(rest);
    std::string w;
    while (words >> w) {
      if (w.size() != 16 || w.find_first_not_of("0123456789abcdef") != std::string::npos)
        return in.Fail("thresholds", "'" + w + "' is not 16 hex digits");
      const uint64_t bits = std::strtoull(w.c_str(), nullptr, 16);
      double d;
      std::memcpy(&d, &bits, 8);
      c.thresholds.push_back(d);
    }
    if (c.thresholds.size() != static_cast<size_t>(c.units))
      return in.Fail("thresholds", std::to_string(c.thresholds.size()) + " values, expected " +
                                       std::to_string(c.units));
  }
  struct Scalar {
    const char* key;
    int64_t* out;
  };
  for (const Scalar& k : {Scalar{"images_scored", &c.images_scored}, Scalar{"rows", &c.rows},
                          Scalar{"forward_images", &c.forward_images},
                          Scalar{"repeated_label_pixels", &c.repeated_label_pixels},
                          Scalar{"label_read_failures", &c.label_read_failures},
                          Scalar{"fetch_failures", &c.fetch_failures}}) {
    ND_ASSIGN_OR_RETURN(rest, in.Expect(k.key));
    if (Status s = ParseInts(rest, 1, &v); !s.ok()) return in.Fail(k.key, s.message());
    if (v[0] < 0) return in.Fail(k.key, "negative");
    *k.out = v[0];
  }
  ND_ASSIGN_OR_RETURN(rest, in.Expect("masks"));
  if (Status s = ParseInts(rest, 5, &v); !s.ok()) return in.Fail("masks", s.message());
  c.masks = MaskStats{v[0], v[1], v[2], v[3], v[4]};
  ND_ASSIGN_OR_RETURN(rest, in.Expect("cpu_seconds"));
  if (Status s = ParseReal(rest, &c.cpu_seconds); !s.ok())
    return in.Fail("cpu_seconds", s.message());
  while (in.Peek("upstream_skip")) {
    ND_ASSIGN_OR_RETURN(rest, in.Expect("upstream_skip"));
    uint32_t row;
    std::string reason;
    if (Status s = ParseSkip(rest, &row, &reason); !s.ok())
      return in.Fail("upstream_skip", s.message());
    c.upstream_skipped.emplace_back(row, reason);
  }
  while (in.Peek("score_skip")) {
    ND_ASSIGN_OR_RETURN(rest, in.Expect("score_skip"));
    uint32_t row;
    std::string reason;
    if (Status s = ParseSkip(rest, &row, &reason); !s.ok())
      return in.Fail("score_skip", s.message());
    c.skipped.push_back({row, reason});
  }
  ND_ASSIGN_OR_RETURN(rest, in.Expect("g"));
  if (Status s = ParseInts(rest, c.num_labels, &c.g); !s.ok()) return in.Fail("g", s.message());
  for (const char* key : {"i", "u"}) {
    const int width = *key == 'i' ? c.num_labels : c.num_categories;
    std::vector<int64_t>& all = *key == 'i' ? c.i : c.u;
    for (int u = 0; u < c.units; ++u) {
      ND_ASSIGN_OR_RETURN(rest, in.Expect(key));
      if (Status s = ParseInts(rest, width + 1, &v); !s.ok()) return in.Fail(key, s.message());
      if (v[0] != u)
        return in.Fail(key, "unit " + std::to_string(v[0]) + ", expected " + std::to_string(u));
      all.insert(all.end(), v.begin() + 1, v.end());
    }
  }
  ND_RETURN_IF_ERROR(in.ExpectEnd());
  return c;
}

Status WriteCountsFile(const std::string& path, const ShardCounts& counts) {
  return WriteMakingDirs(path, FormatCounts(counts));
}

StatusOr<ShardCounts> ReadCountsFile(const std::string& path) {
  ND_ASSIGN_OR_RETURN(std::string text, ReadFileText(path));
  return ParseCounts(text, path);
}

StatusOr<ShardCounts> MergeCounts(const std::vector<ShardCounts>& parts) {
  if (parts.empty()) return InvalidArgument("counts: nothing to merge");
  ShardCounts out = parts[0];
  for (size_t p = 1; p < parts.size(); ++p) {
    const ShardCounts& c = parts[p];
    const std::string what = "counts of shard " + std::to_string(c.shard) + " (layer '" + c.layer +
                             "', q " + Real(c.quantile) + ")";
    if (c.layer != out.layer || c.quantile != out.quantile)
      return InvalidArgument(what + " are for another layer or quantile than shard " +
                             std::to_string(out.shard) + "'s");
    if (c.units != out.units || c.num_labels != out.num_labels ||
        c.num_categories != out.num_categories || c.rule != out.rule)
      return InvalidArgument(what + " have another shape or union rule");
    for (int u = 0; u < c.units; ++u)
      if (Hex64(c.thresholds[u]) != Hex64(out.thresholds[u]))
        return InvalidArgument(what + " were counted with another threshold for unit " +
                               std::to_string(u));
    out.images_scored += c.images_scored;
    out.rows += c.rows;
    out.forward_images += c.forward_images;
    out.repeated_label_pixels += c.repeated_label_pixels;
    out.label_read_failures += c.label_read_failures;
    out.fetch_failures += c.fetch_failures;
    out.masks.Add(c.masks);
    out.cpu_seconds += c.cpu_seconds;
    out.upstream_skipped.insert(out.upstream_skipped.end(), c.upstream_skipped.begin(),
                                c.upstream_skipped.end());
    out.skipped.insert(out.skipped.end(), c.skipped.begin(), c.skipped.end());
    for (size_t k = 0; k < out.g.size(); ++k) out.g[k] += c.g[k];
    for (size_t k = 0; k < out.i.size(); ++k) out.i[k] += c.i[k];
    for (size_t k = 0; k < out.u.size(); ++k) out.u[k] += c.u[k];
  }
  std::stable_sort(out.skipped.begin(), out.skipped.end(),
                   [](const SkippedImage& a, const SkippedImage& b) { return a.row < b.row; });
  out.shard = 0;
  return out;
}

StatusOr<ScoreReport> ReportFromCounts(const ShardCounts& c, const BrodenDataset& dataset,
                                       double iou_threshold) {
  auto tally = std::make_shared<IouTally>(c.thresholds, c.num_labels, c.num_categories, c.rule);
  ND_RETURN_IF_ERROR(tally->AddCounts(c.images_scored, c.g, c.i, c.u)
                         .WithContext("counts of layer '" + c.layer + "'"));
  ScoreReport report;
  ND_ASSIGN_OR_RETURN(report.results, ComputeLayerResults(*tally, dataset, iou_threshold));
  report.images_scored = c.images_scored;
  report.skipped = c.skipped;
  report.images_skipped = static_cast<int64_t>(c.skipped.size());
  report.label_read_failures = c.label_read_failures;
  report.fetch_failures = c.fetch_failures;
  report.repeated_label_pixels = c.repeated_label_pixels;
  report.masks = c.masks;
  report.cpu_seconds = c.cpu_seconds;
  report.tally = tally;
  return report;
}

// ---- Forward record ----

std::string FormatForwardRecord(const ForwardRecord& r) {
  return "nd-shard-forward 1\nshard " + std::to_string(r.shard) + " " + std::to_string(r.shards) +
         "\nrestart " + std::to_string(r.restart) + "\nimages " + std::to_string(r.images) +
         "\nforward_images " + std::to_string(r.forward_images) + "\nimages_from_cache " +
         std::to_string(r.images_from_cache) + "\nend\n";
}

StatusOr<ForwardRecord> ParseForwardRecord(const std::string& text, const std::string& name) {
  LineCursor in(SplitLines(text), name);
  ForwardRecord r;
  std::vector<int64_t> v;
  ND_ASSIGN_OR_RETURN(std::string rest, in.Expect("nd-shard-forward"));
  if (rest != "1") return in.Fail("nd-shard-forward", "version '" + rest + "', expected 1");
  ND_ASSIGN_OR_RETURN(rest, in.Expect("shard"));
  if (Status s = ParseInts(rest, 2, &v); !s.ok()) return in.Fail("shard", s.message());
  r.shard = static_cast<int>(v[0]);
  r.shards = static_cast<int>(v[1]);
  for (auto [key, out] : {std::pair<const char*, int64_t*>{"restart", &r.restart},
                          {"images", &r.images},
                          {"forward_images", &r.forward_images},
                          {"images_from_cache", &r.images_from_cache}}) {
    ND_ASSIGN_OR_RETURN(rest, in.Expect(key));
    if (Status s = ParseInts(rest, 1, &v); !s.ok()) return in.Fail(key, s.message());
    if (v[0] < 0) return in.Fail(key, "negative");
    *out = v[0];
  }
  ND_RETURN_IF_ERROR(in.ExpectEnd());
  return r;
}

Status WriteForwardRecord(const std::string& path, const ForwardRecord& record) {
  return WriteMakingDirs(path, FormatForwardRecord(record));
}

StatusOr<ForwardRecord> ReadForwardRecord(const std::string& path) {
  ND_ASSIGN_OR_RETURN(std::string text, ReadFileText(path));
  return ParseForwardRecord(text, path);
}

}  // namespace nd
