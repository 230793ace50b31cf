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
#include <optional>
#include <set>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "common/base/atomic_file.h"
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

// What Run() learns from the source and decides before it writes anything.
struct ExpandPlan {
  std::string root;                                              // the source's root directory
  int source_cat = -1, part_cat = -1;                            // category indexes in the source
  int numbers[4] = {0, 0, 0, 0};                                 // the new labels' numbers
  fs::path out;                                                  // the output directory, normalised
  std::string part_csv;                                          // "c_<part>.csv"
  std::string index_text, category_text, label_text, part_text;  // the source CSVs' bytes
  std::optional<CsvTable> index, category_table, label_table, part_table;
  int index_part_col = -1;
  std::vector<std::string> files;  // every file index.csv names, relative to images/
  std::vector<RowNames> names;     // per row: the new layers' file names
};

// The options alone, before the source is opened.
Status CheckOptions(const ExpandOptions& o) {
  if (o.source_dir.empty()) return InvalidArgument("--expand-from DIR is required");
  if (o.out_dir.empty()) return InvalidArgument("--out DIR is required");
  if (o.threads < 0 || o.threads > 1024) {
    return InvalidArgument("--threads must be in 0..1024 (0 = all cores), got " +
                           std::to_string(o.threads));
  }
  if (o.new_category.empty() || o.new_category.find_first_of(",;/\"") != std::string::npos) {
    return InvalidArgument("new category name '" + o.new_category + "' is not usable");
  }
  return Status::Ok();
}

// The source's categories and labels, and room for four label numbers.
Status CheckSource(const ExpandOptions& o, const BrodenDataset& source, ExpandPlan* plan) {
  const std::string& root = plan->root;
  plan->source_cat = source.CategoryIndex(o.source_category);
  plan->part_cat = source.CategoryIndex(o.part_category);
  if (plan->source_cat < 0) {
    return InvalidArgument(root + "/category.csv: no category '" + o.source_category +
                           "' to derive new labels from");
  }
  if (plan->part_cat < 0) {
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
  for (int k = 0; k < 4; ++k) plan->numbers[k] = max_number + 1 + k;
  return Status::Ok();
}

// The output directory: the same rules as the generator; never the source.
Status CheckOutput(const ExpandOptions& o, ExpandPlan* plan) {
  std::error_code ec;
  fs::path out = fs::path(o.out_dir).lexically_normal();
  if (!out.has_filename()) out = out.parent_path();
  plan->out = out;
  if (!fs::exists(out, ec)) return Status::Ok();
  if (fs::equivalent(out, plan->root, ec)) {
    return InvalidArgument("--out '" + o.out_dir + "' is the source directory");
  }
  if (!fs::is_directory(out, ec)) {
    return InvalidArgument("output '" + o.out_dir + "' exists and is not a directory");
  }
  if (IsEmptyDir(out)) return Status::Ok();
  if (!o.overwrite) {
    return InvalidArgument("output directory '" + o.out_dir +
                           "' is not empty (pass --overwrite to replace a previous dataset)");
  }
  if (!fs::exists(out / "index.csv", ec)) {
    return InvalidArgument("refusing to overwrite '" + o.out_dir +
                           "': it is not empty and holds no index.csv");
  }
  return Status::Ok();
}

// The source CSVs as text (rows are re-emitted or appended to) and as tables, each read once.
Status ReadSourceCsvs(const ExpandOptions& o, ExpandPlan* plan) {
  const std::string& root = plan->root;
  ND_ASSIGN_OR_RETURN(plan->index_text, ReadFileText(root + "/index.csv"));
  ND_ASSIGN_OR_RETURN(plan->index, CsvTable::Parse(plan->index_text, root + "/index.csv"));
  ND_ASSIGN_OR_RETURN(plan->category_text, ReadFileText(root + "/category.csv"));
  ND_ASSIGN_OR_RETURN(plan->category_table,
                      CsvTable::Parse(plan->category_text, root + "/category.csv"));
  ND_ASSIGN_OR_RETURN(plan->label_text, ReadFileText(root + "/label.csv"));
  plan->part_csv = "c_" + o.part_category + ".csv";
  ND_ASSIGN_OR_RETURN(plan->part_text, ReadFileText(root + "/" + plan->part_csv));
  ND_ASSIGN_OR_RETURN(plan->label_table, CsvTable::Parse(plan->label_text, root + "/label.csv"));
  ND_ASSIGN_OR_RETURN(plan->part_table,
                      CsvTable::Parse(plan->part_text, root + "/" + plan->part_csv));
  ND_ASSIGN_OR_RETURN(plan->index_part_col, plan->index->RequireColumn(o.part_category));
  if (plan->index->ColumnIndex(o.new_category) >= 0) {
    return InvalidArgument(root + "/index.csv: already has a column '" + o.new_category + "'");
  }
  return Status::Ok();
}

// Every file index.csv names, and the names of the new layers (unused names only).
Status NameFiles(const ExpandOptions& o, const BrodenDataset& source, ExpandPlan* plan) {
  const std::string& root = plan->root;
  const std::vector<BrodenImage>& images = source.images();
  std::set<std::string> used;
  auto use = [&](const std::string& relative) -> Status {
    ND_ASSIGN_OR_RETURN(const std::string resolved, source.ResolveImagePath(relative));
    const std::string rel = RelativeToImages(root, resolved);
    if (used.insert(rel).second) plan->files.push_back(rel);
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
  plan->names.resize(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    ND_ASSIGN_OR_RETURN(const std::string photo, source.ResolveImagePath(images[i].image));
    const std::string stem = Stem(RelativeToImages(root, photo));
    const int next_part = static_cast<int>(images[i].pixel_layers[plan->part_cat].size()) + 1;
    plan->names[i].part = unused_name(stem, o.part_category, next_part);
    plan->names[i].edge1 = unused_name(stem, o.new_category, 1);
    plan->names[i].edge2 = unused_name(stem, o.new_category, 2);
  }
  return Status::Ok();
}

// Derives and writes the new layers of image i into `new_images`.
Status ExpandImage(const BrodenDataset& source, const ExpandPlan& plan, size_t i,
                   const std::string& new_images, ImageExpansion* r) {
  ND_ASSIGN_OR_RETURN(const ImageLabels labels, source.ReadLabels(i));
  r->grid = static_cast<int64_t>(labels.sh) * labels.sw;
  const std::vector<uint16_t>* src = nullptr;
  for (size_t k = 0; k < labels.layers.size(); ++k) {
    if (labels.layer_category[k] == plan.source_cat) {
      src = &labels.layers[k];
      break;
    }
  }
  if (src == nullptr) return Status::Ok();
  std::vector<uint16_t> part, hedge, vedge;
  DeriveLayers(*src, labels.sh, labels.sw, plan.numbers, &part, &hedge, &vedge, r->pixels);
  const RowNames& names = plan.names[i];
  if (r->pixels[kUpperHalf] + r->pixels[kLowerHalf] > 0) {
    ND_RETURN_IF_ERROR(WriteLabelPng(new_images + names.part, part, labels.sh, labels.sw));
    r->part_item = names.part;
  }
  if (r->pixels[kHorizontalEdge] > 0) {
    ND_RETURN_IF_ERROR(WriteLabelPng(new_images + names.edge1, hedge, labels.sh, labels.sw));
    r->edge_items.push_back(names.edge1);
  }
  if (r->pixels[kVerticalEdge] > 0) {
    ND_RETURN_IF_ERROR(WriteLabelPng(new_images + names.edge2, vedge, labels.sh, labels.sw));
    r->edge_items.push_back(names.edge2);
  }
  return Status::Ok();
}

// Statistics, in image order. Pixels are summed per grid size so that coverage is exact integer
// arithmetic divided once per grid size (the generator's pixels/grid when all agree).
void Summarize(const ExpandOptions& o, const ExpandPlan& plan,
               const std::vector<ImageExpansion>& results, ExpandSummary* summary) {
  std::map<int64_t, int64_t> pixels_by_grid[4];
  for (int k = 0; k < 4; ++k) {
    summary->labels[k].number = plan.numbers[k];
    summary->labels[k].name = kNewLabelNames[k];
    summary->labels[k].category = k < 2 ? o.part_category : o.new_category;
  }
  for (const ImageExpansion& r : results) {
    for (int k = 0; k < 4; ++k) {
      if (r.pixels[k] == 0) continue;
      ++summary->labels[k].frequency;
      pixels_by_grid[k][r.grid] += r.pixels[k];
    }
    summary->layers_written += (r.part_item.empty() ? 0 : 1) + r.edge_items.size();
  }
  for (int k = 0; k < 4; ++k) {
    for (const auto& [grid, pixels] : pixels_by_grid[k]) {
      summary->labels[k].coverage += static_cast<double>(pixels) / static_cast<double>(grid);
    }
  }
}

// label.csv: the source bytes plus four rows.
Status WriteLabelCsv(const ExpandPlan& plan, const ExpandSummary& summary, const fs::path& dir) {
  std::string text = EndedText(plan.label_text);
  const std::string eol = LineEnd(plan.label_text);
  for (const ExpandedLabel& l : summary.labels) {
    text += CsvRow(RowFor(plan.label_table->header(),
                          {{"number", std::to_string(l.number)},
                           {"name", l.name},
                           {"category", l.category + "(" + std::to_string(l.frequency) + ")"},
                           {"frequency", std::to_string(l.frequency)},
                           {"coverage", Fixed6(l.coverage)}}),
                   eol);
  }
  return WriteText((dir / "label.csv").string(), text);
}

// c_<part>.csv: the source bytes plus two rows, codes after the largest; c_<new>.csv: new.
Status WritePartCsvs(const ExpandOptions& o, const ExpandPlan& plan, const ExpandSummary& summary,
                     const fs::path& dir) {
  std::string text = EndedText(plan.part_text);
  const std::string eol = LineEnd(plan.part_text);
  const CsvTable& part_table = *plan.part_table;
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
  ND_RETURN_IF_ERROR(WriteText((dir / plan.part_csv).string(), text));
  return WriteText((dir / ("c_" + o.new_category + ".csv")).string(), fresh);
}

// The other c_<cat>.csv files, as they are (a missing one stays missing).
Status CopyOtherCategoryCsvs(const ExpandOptions& o, const BrodenDataset& source,
                             const ExpandPlan& plan, const fs::path& dir) {
  std::error_code ec;
  for (const BrodenCategory& c : source.categories()) {
    if (c.name == o.part_category) continue;
    const fs::path from = fs::path(plan.root) / ("c_" + c.name + ".csv");
    if (!fs::exists(from, ec)) continue;
    fs::copy_file(from, dir / from.filename(), fs::copy_options::none, ec);
    if (ec) return IoError("cannot copy '" + from.string() + "': " + ec.message());
  }
  return Status::Ok();
}

// category.csv: the part row recomputed, the new category appended.
Status WriteCategoryCsv(const ExpandOptions& o, const ExpandPlan& plan,
                        const ExpandSummary& summary, const fs::path& dir) {
  const CsvTable& table = *plan.category_table;
  const int* numbers = plan.numbers;
  const std::string eol = LineEnd(plan.category_text);
  const std::vector<std::string>& header = table.header();
  ND_ASSIGN_OR_RETURN(const int name_col, table.RequireColumn("name"));
  ND_ASSIGN_OR_RETURN(const int first_col, table.RequireColumn("first"));
  ND_ASSIGN_OR_RETURN(const int last_col, table.RequireColumn("last"));
  ND_ASSIGN_OR_RETURN(const int count_col, table.RequireColumn("count"));
  ND_ASSIGN_OR_RETURN(const int freq_col, table.RequireColumn("frequency"));
  std::string text = CsvRow(header, eol);
  for (size_t r = 0; r < table.num_rows(); ++r) {
    std::vector<std::string> row;
    for (size_t c = 0; c < header.size(); ++c) row.push_back(table.cell(r, static_cast<int>(c)));
    if (row[name_col] == o.part_category) {
      ND_ASSIGN_OR_RETURN(const int64_t first, table.GetInt(r, first_col));
      ND_ASSIGN_OR_RETURN(const int64_t last, table.GetInt(r, last_col));
      ND_ASSIGN_OR_RETURN(const int64_t count, table.GetInt(r, count_col));
      ND_ASSIGN_OR_RETURN(const int64_t frequency, table.GetInt(r, freq_col));
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
  return WriteText((dir / "category.csv").string(), text);
}

// index.csv (written last): the part cell gains the new layer, the new column is appended.
Status WriteIndexCsv(const ExpandOptions& o, const ExpandPlan& plan,
                     const std::vector<ImageExpansion>& results, const fs::path& dir) {
  const CsvTable& index = *plan.index;
  const std::string eol = LineEnd(plan.index_text);
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
      std::string& cell = row[plan.index_part_col];
      cell += (cell.empty() ? "" : ";") + e.part_item;
    }
    std::string edge;
    for (const std::string& item : e.edge_items) edge += (edge.empty() ? "" : ";") + item;
    row.push_back(edge);
    text += CsvRow(row, eol);
  }
  return WriteText((dir / "index.csv").string(), text);
}

// Replaces `out` (empty, or a previous dataset with --overwrite) by `partial`.
Status MoveIntoPlace(const ExpandOptions& o, const fs::path& partial, const fs::path& out) {
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (o.overwrite && fs::exists(out / "index.csv", ec)) {
      fs::remove_all(out, ec);
    } else {
      fs::remove(out, ec);  // an empty directory (checked before anything was written)
    }
    if (ec) return IoError("cannot replace '" + out.string() + "': " + ec.message());
  }
  fs::rename(partial, out, ec);
  if (ec) {
    return IoError("cannot rename '" + partial.string() + "' to '" + out.string() +
                   "': " + ec.message());
  }
  return Status::Ok();
}

// Everything after the checks, written into `partial` (a sibling of the output directory).
Status WriteExpansion(const ExpandOptions& o, const BrodenDataset& source, const ExpandPlan& plan,
                      const fs::path& partial, ExpandSummary* summary) {
  const std::string new_images = (partial / "images").string() + "/";
  const std::vector<BrodenImage>& images = source.images();
  summary->images = static_cast<int64_t>(images.size());
  for (const std::string& rel : plan.files) {
    bool linked = false;
    ND_RETURN_IF_ERROR(LinkOrCopy(plan.root + "/images/" + rel, new_images + rel, &linked));
    ++(linked ? summary->files_linked : summary->files_copied);
  }
  // Derive and write the new layers, one image per task.
  std::vector<ImageExpansion> results(images.size());
  ND_RETURN_IF_ERROR(ParallelFor(
      images.size(), WorkerCount(o.threads),
      [&](size_t i) -> Status {
        try {
          return ExpandImage(source, plan, i, new_images, &results[i]);
        } catch (const std::exception& e) {  // OpenCV throws cv::Exception
          return Internal(plan.root + "/index.csv:" + std::to_string(images[i].line) + ": " +
                          e.what());
        }
      },
      "nd-make-broden"));
  Summarize(o, plan, results, summary);
  ND_RETURN_IF_ERROR(WriteLabelCsv(plan, *summary, partial));
  ND_RETURN_IF_ERROR(WritePartCsvs(o, plan, *summary, partial));
  ND_RETURN_IF_ERROR(CopyOtherCategoryCsvs(o, source, plan, partial));
  ND_RETURN_IF_ERROR(WriteCategoryCsv(o, plan, *summary, partial));
  return WriteIndexCsv(o, plan, results, partial);
}

}  // namespace

DatasetExpander::DatasetExpander(ExpandOptions options) : options_(std::move(options)) {}

StatusOr<ExpandSummary> DatasetExpander::Run() {
  const ExpandOptions& o = options_;
  const auto start = std::chrono::steady_clock::now();
  ExpandPlan plan;
  ND_RETURN_IF_ERROR(CheckOptions(o));
  // The source, all categories selected (every layer is linked, every c_*.csv read).
  ND_ASSIGN_OR_RETURN(const BrodenDataset source, BrodenDataset::Open(o.source_dir));
  plan.root = source.root();
  ND_RETURN_IF_ERROR(CheckSource(o, source, &plan));
  ND_RETURN_IF_ERROR(CheckOutput(o, &plan));
  ND_RETURN_IF_ERROR(ReadSourceCsvs(o, &plan));
  ND_RETURN_IF_ERROR(NameFiles(o, source, &plan));

  // Work in a sibling directory, renamed into place at the end; removed on any failure.
  std::error_code ec;
  const fs::path partial = plan.out.string() + ".partial-" + std::to_string(::getpid());
  fs::remove_all(partial, ec);
  fs::create_directories(partial / "images", ec);
  if (ec) {
    return IoError("--out '" + o.out_dir + "': cannot create '" + (partial / "images").string() +
                   "': " + ec.message());
  }
  ExpandSummary summary;
  Status s = WriteExpansion(o, source, plan, partial, &summary);
  if (s.ok()) s = MoveIntoPlace(o, partial, plan.out);
  if (!s.ok()) {
    fs::remove_all(partial, ec);
    return s;
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
