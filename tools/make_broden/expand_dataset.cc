#include "tools/make_broden/expand_dataset.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "common/base/parallel.h"
#include "common/base/text_format.h"
#include "common/broden/broden_dataset.h"
#include "common/broden/csv.h"

namespace nd {
namespace fs = std::filesystem;

namespace {

constexpr int kUpperHalf = 0, kLowerHalf = 1, kHorizontalEdge = 2, kVerticalEdge = 3;
constexpr const char* kNewLabelNames[4] = {"upper-half", "lower-half", "horizontal-edge",
                                           "vertical-edge"};
constexpr int kMaxLabelNumber = 65535;  // PNG coding R + 256*G

// What one image contributes: its new cells and per-label pixel counts.
struct ImageExpansion {
  std::string part_item;                // "" when no part layer was written
  std::vector<std::string> edge_items;  // 0..2 items, layer order
  int64_t pixels[4] = {0, 0, 0, 0};
  int64_t grid = 0;  // sh*sw
};

// Names reserved for one row's new layers (decided before the parallel phase).
struct RowNames {
  std::string part, edge1, edge2;
};

Status ReadText(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot read '" + path + "'");
  std::stringstream s;
  s << in.rdbuf();
  *out = s.str();
  return Status::Ok();
}

Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return IoError("cannot write '" + path + "'");
  return Status::Ok();
}

// The source file's line end ("\r\n" when its first line ends that way, else "\n").
std::string LineEnd(const std::string& text) {
  const size_t nl = text.find('\n');
  return nl != std::string::npos && nl > 0 && text[nl - 1] == '\r' ? "\r\n" : "\n";
}

// Text plus a line end when it does not already end with one (so rows can be appended).
std::string EndedText(const std::string& text) {
  if (text.empty() || text.back() == '\n') return text;
  return text + LineEnd(text);
}

// One row in the column order of `header`; columns not in `values` are left empty.
std::vector<std::string> RowFor(const std::vector<std::string>& header,
                                const std::map<std::string, std::string>& values) {
  std::vector<std::string> row;
  for (const std::string& column : header) {
    auto it = values.find(column);
    row.push_back(it == values.end() ? "" : it->second);
  }
  return row;
}

std::string Fixed6(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6f", v);
  return buf;
}

// The photo path without its extension.
std::string Stem(const std::string& path) {
  const size_t slash = path.rfind('/');
  const size_t dot = path.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return path;
  return path.substr(0, dot);
}

// Relative path under images/ of a path that ResolveImagePath() returned.
std::string RelativeToImages(const std::string& root, const std::string& resolved) {
  return resolved.substr(root.size() + std::string("/images/").size());
}

Status LinkOrCopy(const fs::path& from, const fs::path& to, bool* linked) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (ec) return IoError("cannot create '" + to.parent_path().string() + "': " + ec.message());
  *linked = false;
  if (!fs::is_symlink(from, ec)) {
    fs::create_hard_link(from, to, ec);
    if (!ec) {
      *linked = true;
      return Status::Ok();
    }
  }
  fs::copy_file(from, to, fs::copy_options::none, ec);
  if (ec) {
    return IoError("cannot link or copy '" + from.string() + "' to '" + to.string() +
                   "': " + ec.message());
  }
  return Status::Ok();
}

// Encodes a label map (label = R + 256*G) as the generator does and writes it.
Status WriteLabelPng(const std::string& path, const std::vector<uint16_t>& labels, int rows,
                     int cols) {
  cv::Mat rgb(rows, cols, CV_8UC3);
  for (int i = 0; i < rows; ++i) {
    cv::Vec3b* out = rgb.ptr<cv::Vec3b>(i);  // OpenCV order: B, G, R
    for (int j = 0; j < cols; ++j) {
      const uint16_t v = labels[static_cast<size_t>(i) * cols + j];
      out[j] = cv::Vec3b(0, static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v & 255));
    }
  }
  std::vector<uchar> encoded;
  if (!cv::imencode(".png", rgb, encoded, {cv::IMWRITE_PNG_COMPRESSION, 1})) {
    return Internal("cannot encode PNG '" + path + "'");
  }
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  return WriteText(path, std::string(encoded.begin(), encoded.end()));
}

bool IsEmptyDir(const fs::path& p) {
  std::error_code ec;
  return fs::is_empty(p, ec) && !ec;
}

// The derived layers of one source layer (definitions in expand_dataset.h). `numbers` are the new
// label numbers in kUpperHalf..kVerticalEdge order.
void DeriveLayers(const std::vector<uint16_t>& src, int sh, int sw, const int numbers[4],
                  std::vector<uint16_t>* part, std::vector<uint16_t>* hedge,
                  std::vector<uint16_t>* vedge, int64_t pixels[4]) {
  const size_t n = static_cast<size_t>(sh) * sw;
  part->assign(n, 0);
  hedge->assign(n, 0);
  vedge->assign(n, 0);
  // Row extent of every source label in this image.
  std::map<uint16_t, std::pair<int, int>> extent;  // label -> (first row, last row)
  for (int i = 0; i < sh; ++i) {
    for (int j = 0; j < sw; ++j) {
      const uint16_t v = src[static_cast<size_t>(i) * sw + j];
      if (v == 0) continue;
      auto [it, inserted] = extent.try_emplace(v, i, i);
      if (!inserted) it->second.second = i;  // rows are visited in increasing order
    }
  }
  for (int i = 0; i < sh; ++i) {
    for (int j = 0; j < sw; ++j) {
      const size_t p = static_cast<size_t>(i) * sw + j;
      const uint16_t v = src[p];
      if (v != 0) {
        const auto& [top, bottom] = extent.at(v);
        const int which = 2 * (i - top) < bottom - top + 1 ? kUpperHalf : kLowerHalf;
        (*part)[p] = static_cast<uint16_t>(numbers[which]);
        ++pixels[which];
      }
      const bool h = (i > 0 && src[p - sw] != v) || (i + 1 < sh && src[p + sw] != v);
      const bool w = (j > 0 && src[p - 1] != v) || (j + 1 < sw && src[p + 1] != v);
      if (h) {
        (*hedge)[p] = static_cast<uint16_t>(numbers[kHorizontalEdge]);
        ++pixels[kHorizontalEdge];
      }
      if (w) {
        (*vedge)[p] = static_cast<uint16_t>(numbers[kVerticalEdge]);
        ++pixels[kVerticalEdge];
      }
    }
  }
}

}  // namespace

DatasetExpander::DatasetExpander(ExpandOptions options) : options_(std::move(options)) {}

StatusOr<ExpandSummary> DatasetExpander::Run() {
  const ExpandOptions& o = options_;
  const auto start = std::chrono::steady_clock::now();
  if (o.source_dir.empty()) return InvalidArgument("--expand-from DIR is required");
  if (o.out_dir.empty()) return InvalidArgument("--out DIR is required");
  if (o.threads < 0 || o.threads > 1024) {
    return InvalidArgument("--threads must be in 0..1024 (0 = all cores), got " +
                           std::to_string(o.threads));
  }
  if (o.new_category.empty() || o.new_category.find_first_of(",;/\"") != std::string::npos) {
    return InvalidArgument("new category name '" + o.new_category + "' is not usable");
  }

  // The source, all categories selected (every layer is linked, every c_*.csv read).
  ND_ASSIGN_OR_RETURN(const BrodenDataset source, BrodenDataset::Open(o.source_dir));
  const std::string root = source.root();
  const int source_cat = source.CategoryIndex(o.source_category);
  const int part_cat = source.CategoryIndex(o.part_category);
  if (source_cat < 0) {
    return InvalidArgument(root + "/category.csv: no category '" + o.source_category +
                           "' to derive new labels from");
  }
  if (part_cat < 0) {
    return InvalidArgument(root + "/category.csv: no category '" + o.part_category +
                           "' to add part labels to");
  }
  if (source.CategoryIndex(o.new_category) >= 0) {
    return InvalidArgument(root + "/category.csv: category '" + o.new_category +
                           "' already exists (expanding an expanded dataset?)");
  }
  for (const BrodenLabel& label : source.labels()) {
    for (const char* name : kNewLabelNames) {
      if (label.defined && label.name == name) {
        return InvalidArgument(root + "/label.csv: label " + std::to_string(label.number) +
                               " is already named '" + name + "'");
      }
    }
  }
  const int max_number = source.num_labels() - 1;
  if (max_number + 4 > kMaxLabelNumber) {
    return InvalidArgument(root + "/label.csv: no room for 4 more label numbers after " +
                           std::to_string(max_number));
  }
  int numbers[4];
  for (int k = 0; k < 4; ++k) numbers[k] = max_number + 1 + k;

  // Output directory: the same rules as the generator; never the source.
  std::error_code ec;
  fs::path out = fs::path(o.out_dir).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();
  if (fs::exists(out, ec)) {
    if (fs::equivalent(out, root, ec)) {
      return InvalidArgument("--out '" + o.out_dir + "' is the source directory");
    }
    if (!fs::is_directory(out, ec)) {
      return InvalidArgument("output '" + o.out_dir + "' exists and is not a directory");
    }
    if (!IsEmptyDir(out)) {
      if (!o.overwrite) {
        return InvalidArgument("output directory '" + o.out_dir +
                               "' is not empty (pass --overwrite to replace a previous dataset)");
      }
      if (!fs::exists(out / "index.csv", ec)) {
        return InvalidArgument("refusing to overwrite '" + o.out_dir +
                               "': it is not empty and holds no index.csv");
      }
    }
  }

  // The source CSVs as text (rows are re-emitted or appended to).
  ND_ASSIGN_OR_RETURN(const CsvTable index, CsvTable::ReadFile(root + "/index.csv"));
  ND_ASSIGN_OR_RETURN(const CsvTable category_table, CsvTable::ReadFile(root + "/category.csv"));
  std::string index_text, category_text, label_text, part_text;
  ND_RETURN_IF_ERROR(ReadText(root + "/index.csv", &index_text));
  ND_RETURN_IF_ERROR(ReadText(root + "/category.csv", &category_text));
  ND_RETURN_IF_ERROR(ReadText(root + "/label.csv", &label_text));
  const std::string part_csv = "c_" + o.part_category + ".csv";
  ND_RETURN_IF_ERROR(ReadText(root + "/" + part_csv, &part_text));
  ND_ASSIGN_OR_RETURN(const CsvTable label_table, CsvTable::Parse(label_text, root + "/label.csv"));
  ND_ASSIGN_OR_RETURN(const CsvTable part_table, CsvTable::Parse(part_text, root + "/" + part_csv));
  ND_ASSIGN_OR_RETURN(const int index_part_col, index.RequireColumn(o.part_category));
  if (index.ColumnIndex(o.new_category) >= 0) {
    return InvalidArgument(root + "/index.csv: already has a column '" + o.new_category + "'");
  }

  // Every file index.csv names, and the names of the new layers (unused names only).
  const std::vector<BrodenImage>& images = source.images();
  std::vector<std::string> files;  // relative to images/, in first-use order
  std::set<std::string> used;
  auto use = [&](const std::string& relative) -> Status {
    ND_ASSIGN_OR_RETURN(const std::string resolved, source.ResolveImagePath(relative));
    const std::string rel = RelativeToImages(root, resolved);
    if (used.insert(rel).second) files.push_back(rel);
    return Status::Ok();
  };
  for (const BrodenImage& image : images) {
    ND_RETURN_IF_ERROR(use(image.image));
    for (const auto& layers : image.pixel_layers) {
      for (const std::string& layer : layers) ND_RETURN_IF_ERROR(use(layer));
    }
  }
  auto unused_name = [&](const std::string& stem, const std::string& category, int k) {
    for (;; ++k) {
      std::string name = stem + "_" + category + "_" + std::to_string(k) + ".png";
      std::error_code exists_ec;
      if (!used.count(name) && !fs::exists(root + "/images/" + name, exists_ec)) {
        used.insert(name);
        return name;
      }
    }
  };
  std::vector<RowNames> names(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    ND_ASSIGN_OR_RETURN(const std::string photo, source.ResolveImagePath(images[i].image));
    const std::string stem = Stem(RelativeToImages(root, photo));
    names[i].part = unused_name(stem, o.part_category,
                                static_cast<int>(images[i].pixel_layers[part_cat].size()) + 1);
    names[i].edge1 = unused_name(stem, o.new_category, 1);
    names[i].edge2 = unused_name(stem, o.new_category, 2);
  }

  // Work in a sibling directory, renamed into place at the end.
  const fs::path partial = out.string() + ".partial-" + std::to_string(::getpid());
  fs::remove_all(partial, ec);
  fs::create_directories(partial / "images", ec);
  if (ec) {
    return IoError("--out '" + o.out_dir + "': cannot create '" + (partial / "images").string() +
                   "': " + ec.message());
  }
  auto fail = [&](const Status& s) -> Status {
    std::error_code ignored;
    fs::remove_all(partial, ignored);
    return s;
  };
  const std::string new_images = (partial / "images").string() + "/";

  ExpandSummary summary;
  summary.images = static_cast<int64_t>(images.size());
  for (const std::string& rel : files) {
    bool linked = false;
    Status s = LinkOrCopy(root + "/images/" + rel, new_images + rel, &linked);
    if (!s.ok()) return fail(s);
    ++(linked ? summary.files_linked : summary.files_copied);
  }

  // Derive and write the new layers, one image per task.
  std::vector<ImageExpansion> results(images.size());
  const int threads = WorkerCount(o.threads);
  auto process = [&](size_t i) -> Status {
    ImageExpansion& r = results[i];
    ND_ASSIGN_OR_RETURN(const ImageLabels labels, source.ReadLabels(i));
    r.grid = static_cast<int64_t>(labels.sh) * labels.sw;
    const std::vector<uint16_t>* src = nullptr;
    for (size_t k = 0; k < labels.layers.size(); ++k) {
      if (labels.layer_category[k] == source_cat) {
        src = &labels.layers[k];
        break;
      }
    }
    if (src == nullptr) return Status::Ok();
    std::vector<uint16_t> part, hedge, vedge;
    DeriveLayers(*src, labels.sh, labels.sw, numbers, &part, &hedge, &vedge, r.pixels);
    if (r.pixels[kUpperHalf] + r.pixels[kLowerHalf] > 0) {
      ND_RETURN_IF_ERROR(WriteLabelPng(new_images + names[i].part, part, labels.sh, labels.sw));
      r.part_item = names[i].part;
    }
    if (r.pixels[kHorizontalEdge] > 0) {
      ND_RETURN_IF_ERROR(WriteLabelPng(new_images + names[i].edge1, hedge, labels.sh, labels.sw));
      r.edge_items.push_back(names[i].edge1);
    }
    if (r.pixels[kVerticalEdge] > 0) {
      ND_RETURN_IF_ERROR(WriteLabelPng(new_images + names[i].edge2, vedge, labels.sh, labels.sw));
      r.edge_items.push_back(names[i].edge2);
    }
    return Status::Ok();
  };
  Status first_error = ParallelFor(
      images.size(), threads,
      [&](size_t i) -> Status {
        try {
          return process(i);
        } catch (const std::exception& e) {  // OpenCV throws cv::Exception
          return Internal(root + "/index.csv:" + std::to_string(images[i].line) + ": " + e.what());
        }
      },
      "nd-make-broden");
  if (!first_error.ok()) return fail(first_error);

  // Statistics, in image order. Pixels are summed per grid size so that coverage is exact
  // integer arithmetic divided once per grid size (the generator's pixels/grid when all agree).
  std::map<int64_t, int64_t> pixels_by_grid[4];
  for (int k = 0; k < 4; ++k) {
    summary.labels[k].number = numbers[k];
    summary.labels[k].name = kNewLabelNames[k];
    summary.labels[k].category = k < 2 ? o.part_category : o.new_category;
  }
  for (const ImageExpansion& r : results) {
    for (int k = 0; k < 4; ++k) {
      if (r.pixels[k] == 0) continue;
      ++summary.labels[k].frequency;
      pixels_by_grid[k][r.grid] += r.pixels[k];
    }
    summary.layers_written += (r.part_item.empty() ? 0 : 1) + r.edge_items.size();
  }
  for (int k = 0; k < 4; ++k) {
    for (const auto& [grid, pixels] : pixels_by_grid[k]) {
      summary.labels[k].coverage += static_cast<double>(pixels) / static_cast<double>(grid);
    }
  }

  // label.csv: the source bytes plus four rows.
  {
    std::string text = EndedText(label_text);
    const std::string eol = LineEnd(label_text);
    for (const ExpandedLabel& l : summary.labels) {
      text += CsvRow(RowFor(label_table.header(),
                            {{"number", std::to_string(l.number)},
                             {"name", l.name},
                             {"category", l.category + "(" + std::to_string(l.frequency) + ")"},
                             {"frequency", std::to_string(l.frequency)},
                             {"coverage", Fixed6(l.coverage)}}),
                     eol);
    }
    Status s = WriteText((partial / "label.csv").string(), text);
    if (!s.ok()) return fail(s);
  }

  // c_<part>.csv: the source bytes plus two rows, codes after the largest; c_<new>.csv: new.
  {
    std::string text = EndedText(part_text);
    const std::string eol = LineEnd(part_text);
    int64_t max_code = 0;
    ND_ASSIGN_OR_RETURN(const int code_col, part_table.RequireColumn("code"));
    for (size_t r = 0; r < part_table.num_rows(); ++r) {
      ND_ASSIGN_OR_RETURN(const int64_t code, part_table.GetInt(r, code_col));
      max_code = std::max(max_code, code);
    }
    std::string fresh = "code,number,name,frequency,coverage\n";
    for (int k = 0; k < 4; ++k) {
      const ExpandedLabel& l = summary.labels[k];
      const std::string code = std::to_string(k < 2 ? max_code + 1 + k : k - 1);
      std::map<std::string, std::string> values = {{"code", code},
                                                   {"number", std::to_string(l.number)},
                                                   {"name", l.name},
                                                   {"frequency", std::to_string(l.frequency)},
                                                   {"coverage", Fixed6(l.coverage)}};
      if (k < 2) {
        text += CsvRow(RowFor(part_table.header(), values), eol);
      } else {
        fresh += CsvRow(RowFor({"code", "number", "name", "frequency", "coverage"}, values), "\n");
      }
    }
    Status s = WriteText((partial / part_csv).string(), text);
    if (s.ok()) s = WriteText((partial / ("c_" + o.new_category + ".csv")).string(), fresh);
    if (!s.ok()) return fail(s);
  }

  // The other c_<cat>.csv files, as they are (a missing one stays missing).
  for (const BrodenCategory& c : source.categories()) {
    if (c.name == o.part_category) continue;
    const fs::path from = fs::path(root) / ("c_" + c.name + ".csv");
    if (!fs::exists(from, ec)) continue;
    fs::copy_file(from, partial / from.filename(), fs::copy_options::none, ec);
    if (ec) return fail(IoError("cannot copy '" + from.string() + "': " + ec.message()));
  }

  // category.csv: the part row recomputed, the new category appended.
  {
    const std::string eol = LineEnd(category_text);
    const std::vector<std::string>& header = category_table.header();
    ND_ASSIGN_OR_RETURN(const int name_col, category_table.RequireColumn("name"));
    ND_ASSIGN_OR_RETURN(const int first_col, category_table.RequireColumn("first"));
    ND_ASSIGN_OR_RETURN(const int last_col, category_table.RequireColumn("last"));
    ND_ASSIGN_OR_RETURN(const int count_col, category_table.RequireColumn("count"));
    ND_ASSIGN_OR_RETURN(const int freq_col, category_table.RequireColumn("frequency"));
    std::string text = CsvRow(header, eol);
    for (size_t r = 0; r < category_table.num_rows(); ++r) {
      std::vector<std::string> row;
      for (size_t c = 0; c < header.size(); ++c) {
        row.push_back(category_table.cell(r, static_cast<int>(c)));
      }
      if (row[name_col] == o.part_category) {
        ND_ASSIGN_OR_RETURN(const int64_t first, category_table.GetInt(r, first_col));
        ND_ASSIGN_OR_RETURN(const int64_t last, category_table.GetInt(r, last_col));
        ND_ASSIGN_OR_RETURN(const int64_t count, category_table.GetInt(r, count_col));
        ND_ASSIGN_OR_RETURN(const int64_t frequency, category_table.GetInt(r, freq_col));
        row[first_col] =
            std::to_string(count == 0 ? numbers[0] : std::min<int64_t>(first, numbers[0]));
        row[last_col] = std::to_string(std::max<int64_t>(last, numbers[1]));
        row[count_col] = std::to_string(count + 2);
        row[freq_col] =
            std::to_string(frequency + summary.labels[0].frequency + summary.labels[1].frequency);
      }
      text += CsvRow(row, eol);
    }
    text += CsvRow(RowFor(header, {{"name", o.new_category},
                                   {"first", std::to_string(numbers[2])},
                                   {"last", std::to_string(numbers[3])},
                                   {"count", "2"},
                                   {"frequency", std::to_string(summary.labels[2].frequency +
                                                                summary.labels[3].frequency)}}),
                   eol);
    Status s = WriteText((partial / "category.csv").string(), text);
    if (!s.ok()) return fail(s);
  }

  // index.csv last: the part cell gains the new layer, the new column is appended.
  {
    const std::string eol = LineEnd(index_text);
    std::vector<std::string> header = index.header();
    header.push_back(o.new_category);
    std::string text = CsvRow(header, eol);
    for (size_t r = 0; r < index.num_rows(); ++r) {
      std::vector<std::string> row;
      for (size_t c = 0; c < index.header().size(); ++c) {
        row.push_back(index.cell(r, static_cast<int>(c)));
      }
      const ImageExpansion& e = results[r];
      if (!e.part_item.empty()) {
        std::string& cell = row[index_part_col];
        cell += (cell.empty() ? "" : ";") + e.part_item;
      }
      std::string edge;
      for (const std::string& item : e.edge_items) edge += (edge.empty() ? "" : ";") + item;
      row.push_back(edge);
      text += CsvRow(row, eol);
    }
    Status s = WriteText((partial / "index.csv").string(), text);
    if (!s.ok()) return fail(s);
  }

  // Move into place.
  if (fs::exists(out, ec)) {
    if (o.overwrite && fs::exists(out / "index.csv", ec)) {
      fs::remove_all(out, ec);
    } else {
      fs::remove(out, ec);  // an empty directory (checked above)
    }
    if (ec) return fail(IoError("cannot replace '" + out.string() + "': " + ec.message()));
  }
  fs::rename(partial, out, ec);
  if (ec) {
    return fail(IoError("cannot rename '" + partial.string() + "' to '" + out.string() +
                        "': " + ec.message()));
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

std::string FormatExpandSummary(const ExpandOptions& options, const ExpandSummary& s) {
  char buf[256];
  std::string text;
  std::snprintf(buf, sizeof(buf),
                "%lld images from %s (%lld files linked, %lld copied), %lld new layers\n",
                static_cast<long long>(s.images), options.source_dir.c_str(),
                static_cast<long long>(s.files_linked), static_cast<long long>(s.files_copied),
                static_cast<long long>(s.layers_written));
  text += buf;
  for (const ExpandedLabel& l : s.labels) {
    std::snprintf(buf, sizeof(buf), "  %-9s %5d %-16s %6lld images, coverage %.6f\n",
                  l.category.c_str(), l.number, l.name.c_str(), static_cast<long long>(l.frequency),
                  l.coverage);
    text += buf;
  }
  std::snprintf(buf, sizeof(buf), "  %.2f s\n", s.seconds);
  return text + buf;
}

}  // namespace nd
