// Tests of `nd-make-broden --expand-from` (tools/make_broden/expand_dataset.h): the images are the
// source's own files, the new layers match an independent derivation from the object layers, and
// every statistic of the new labels is recounted from the written PNGs through the Broden reader.
#include "tools/make_broden/expand_dataset.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/broden/broden_dataset.h"
#include "common/broden/csv.h"
#include "tests/testing/files.h"
#include "tests/testing/status_assertions.h"
#include "tools/make_broden/broden_generator.h"

namespace nd {
namespace {

using ::nd::testing::ReadAll;

namespace fs = std::filesystem;

std::string Fixed6(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6f", v);
  return buf;
}

ino_t Inode(const fs::path& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 ? st.st_ino : 0;
}

// Rows of a CSV keyed by the value of `key`, each a column → cell map.
std::map<std::string, std::map<std::string, std::string>> RowsBy(const fs::path& p,
                                                                 const std::string& key) {
  std::map<std::string, std::map<std::string, std::string>> rows;
  auto table = CsvTable::ReadFile(p.string());
  if (!table.ok()) {
    ADD_FAILURE() << table.status().message();
    return rows;
  }
  const int k = table->ColumnIndex(key);
  for (size_t r = 0; r < table->num_rows(); ++r) {
    std::map<std::string, std::string> row;
    for (size_t c = 0; c < table->header().size(); ++c) {
      row[table->header()[c]] = table->cell(r, static_cast<int>(c));
    }
    rows[table->cell(r, k)] = row;
  }
  return rows;
}

class ExpandDatasetTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::path(::testing::TempDir()) / ("nd_expand_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    BrodenGeneratorOptions g;
    g.out_dir = (root_ / "src").string();
    g.num_images = 16;
    g.seed = 5;
    g.image_size = 64;
    g.threads = 2;
    auto made = BrodenGenerator(g).Run();
    ND_ASSERT_OK(made);
    auto expanded = Expand("x", 2);
    ND_ASSERT_OK(expanded);
    summary_ = *expanded;
  }
  static void TearDownTestSuite() { fs::remove_all(root_); }

  static StatusOr<ExpandSummary> Expand(const std::string& out, int threads,
                                        const std::string& from = "src") {
    ExpandOptions o;
    o.source_dir = (root_ / from).string();
    o.out_dir = (root_ / out).string();
    o.threads = threads;
    return DatasetExpander(o).Run();
  }

  static fs::path root_;
  static ExpandSummary summary_;
};

fs::path ExpandDatasetTest::root_;
ExpandSummary ExpandDatasetTest::summary_;

TEST_F(ExpandDatasetTest, EveryNamedFileIsTheSourceFileHardLinked) {
  auto src = BrodenDataset::Open((root_ / "src").string());
  ND_ASSERT_OK(src);
  int files = 0;
  for (const BrodenImage& image : src->images()) {
    std::vector<std::string> named = {image.image};
    for (const auto& layers : image.pixel_layers)
      named.insert(named.end(), layers.begin(), layers.end());
    for (const std::string& rel : named) {
      const fs::path a = root_ / "src" / "images" / rel, b = root_ / "x" / "images" / rel;
      ASSERT_TRUE(fs::exists(b)) << b;
      EXPECT_EQ(ReadAll(a), ReadAll(b)) << rel;
      EXPECT_EQ(Inode(a), Inode(b)) << rel << " is not a hard link (same file system)";
      ++files;
    }
  }
  EXPECT_EQ(summary_.files_linked, files);
  EXPECT_EQ(summary_.files_copied, 0);
}

TEST_F(ExpandDatasetTest, SourceCsvRowsArePrefixesAndNewNumbersFollowTheLargest) {
  const fs::path s = root_ / "src", x = root_ / "x";
  const std::string label_src = ReadAll(s / "label.csv"), label_x = ReadAll(x / "label.csv");
  EXPECT_EQ(label_x.substr(0, label_src.size()), label_src);
  const std::string part_src = ReadAll(s / "c_part.csv"), part_x = ReadAll(x / "c_part.csv");
  EXPECT_EQ(part_x.substr(0, part_src.size()), part_src);
  for (const char* c :
       {"c_color.csv", "c_object.csv", "c_material.csv", "c_scene.csv", "c_texture.csv"}) {
    EXPECT_EQ(ReadAll(s / c), ReadAll(x / c)) << c;
  }
  auto src = BrodenDataset::Open(s.string());
  ND_ASSERT_OK(src);
  const int m = src->num_labels() - 1;
  auto labels = RowsBy(x / "label.csv", "name");
  const char* names[4] = {"upper-half", "lower-half", "horizontal-edge", "vertical-edge"};
  for (int k = 0; k < 4; ++k) EXPECT_EQ(labels[names[k]]["number"], std::to_string(m + 1 + k));
  // c_part codes continue after the source's.
  auto part = RowsBy(x / "c_part.csv", "name");
  const int part_count = static_cast<int>(src->categories()[src->CategoryIndex("part")].count);
  EXPECT_EQ(part["upper-half"]["code"], std::to_string(part_count + 1));
  EXPECT_EQ(part["lower-half"]["code"], std::to_string(part_count + 2));
  // category.csv: source rows other than part unchanged, edge last.
  auto table = CsvTable::ReadFile((x / "category.csv").string());
  ND_ASSERT_OK(table);
  ASSERT_EQ(table->num_rows(), src->categories().size() + 1);
  EXPECT_EQ(table->cell(table->num_rows() - 1, table->ColumnIndex("name")), "edge");
}

TEST_F(ExpandDatasetTest, NewLayersAndStatisticsMatchAnIndependentRecount) {
  auto src = BrodenDataset::Open((root_ / "src").string());
  auto x = BrodenDataset::Open((root_ / "x").string());
  ND_ASSERT_OK(src);
  ND_ASSERT_OK(x);
  const int object = x->CategoryIndex("object"), part = x->CategoryIndex("part"),
            edge = x->CategoryIndex("edge");
  ASSERT_GE(edge, 0);
  const int m = src->num_labels() - 1;
  const int upper = m + 1, lower = m + 2, hedge = m + 3, vedge = m + 4;
  // Every source label keeps its primary category; the new ones are part / edge.
  for (int l = 1; l <= m; ++l) EXPECT_EQ(x->PrimaryCategory(l), src->PrimaryCategory(l)) << l;
  EXPECT_EQ(x->PrimaryCategory(upper), part);
  EXPECT_EQ(x->PrimaryCategory(lower), part);
  EXPECT_EQ(x->PrimaryCategory(hedge), edge);
  EXPECT_EQ(x->PrimaryCategory(vedge), edge);

  std::map<int, int64_t> freq, pixels;
  int64_t grid = 0, images_with_object = 0;
  ASSERT_EQ(x->images().size(), src->images().size());
  for (size_t i = 0; i < x->images().size(); ++i) {
    auto labels = x->ReadLabels(i);
    ND_ASSERT_OK(labels);
    const int sh = labels->sh, sw = labels->sw;
    grid = static_cast<int64_t>(sh) * sw;
    const std::vector<uint16_t>* obj = nullptr;
    std::vector<const std::vector<uint16_t>*> parts, edges;
    for (size_t k = 0; k < labels->layers.size(); ++k) {
      const int c = labels->layer_category[k];
      if (c == object && obj == nullptr) obj = &labels->layers[k];
      if (c == part) parts.push_back(&labels->layers[k]);
      if (c == edge) edges.push_back(&labels->layers[k]);
    }
    const size_t src_parts = src->images()[i].pixel_layers[part].size();
    if (obj == nullptr) {  // texture image: nothing new
      EXPECT_EQ(parts.size(), src_parts);
      EXPECT_TRUE(edges.empty());
      continue;
    }
    // Expected layers, by a direct reading of the definitions.
    std::vector<uint16_t> want_part(grid, 0), want_h(grid, 0), want_v(grid, 0);
    std::map<int, int> top, bottom;
    for (int r = 0; r < sh; ++r)
      for (int c = 0; c < sw; ++c) {
        const int v = (*obj)[r * sw + c];
        if (v == 0) continue;
        if (!top.count(v)) top[v] = r;
        bottom[v] = r;
      }
    auto at = [&](int r, int c) { return (*obj)[r * sw + c]; };
    for (int r = 0; r < sh; ++r)
      for (int c = 0; c < sw; ++c) {
        const int v = at(r, c);
        if (v != 0) {
          const double middle = (top[v] + bottom[v] + 1) / 2.0;  // rows < middle are upper
          want_part[r * sw + c] = r < middle ? upper : lower;
        }
        if ((r > 0 && at(r - 1, c) != v) || (r < sh - 1 && at(r + 1, c) != v))
          want_h[r * sw + c] = hedge;
        if ((c > 0 && at(r, c - 1) != v) || (c < sw - 1 && at(r, c + 1) != v))
          want_v[r * sw + c] = vedge;
      }
    if (std::count(want_part.begin(), want_part.end(), 0) == grid) {  // no labelled object pixel
      EXPECT_EQ(parts.size(), src_parts) << "row " << i;
      EXPECT_TRUE(edges.empty()) << "row " << i;
      continue;
    }
    ++images_with_object;
    ASSERT_EQ(parts.size(), src_parts + 1) << "row " << i;
    EXPECT_EQ(*parts.back(), want_part) << "row " << i;
    // The new part layer's name: the photo stem, _part_, the next layer number.
    const std::string& item = x->images()[i].pixel_layers[part].back();
    const std::string stem = x->images()[i].image.substr(0, x->images()[i].image.rfind('.'));
    EXPECT_EQ(item, stem + "_part_" + std::to_string(src_parts + 1) + ".png");
    std::vector<std::vector<uint16_t>> want_edges;
    for (const auto* w : {&want_h, &want_v})
      if (std::count(w->begin(), w->end(), 0) < grid) want_edges.push_back(*w);
    ASSERT_EQ(edges.size(), want_edges.size()) << "row " << i;
    for (size_t k = 0; k < edges.size(); ++k) EXPECT_EQ(*edges[k], want_edges[k]) << "row " << i;
    // Counts from the layers as read back.
    std::map<int, int64_t> here;
    for (const auto* layer : {parts.back()})
      for (uint16_t v : *layer) here[v] += 1;
    for (const auto* layer : edges)
      for (uint16_t v : *layer) here[v] += 1;
    for (int l : {upper, lower, hedge, vedge}) {
      if (here[l] > 0) ++freq[l];
      pixels[l] += here[l];
    }
  }
  ASSERT_GT(images_with_object, 0);
  EXPECT_EQ(freq[upper], images_with_object);  // the top row of any label is upper-half
  EXPECT_GT(pixels[hedge], 0);
  EXPECT_GT(pixels[vedge], 0);

  auto label_rows = RowsBy(root_ / "x" / "label.csv", "number");
  auto part_rows = RowsBy(root_ / "x" / "c_part.csv", "number");
  auto edge_rows = RowsBy(root_ / "x" / "c_edge.csv", "number");
  for (int l : {upper, lower, hedge, vedge}) {
    const std::string n = std::to_string(l);
    const std::string cat = l <= lower ? "part" : "edge";
    auto& c_rows = l <= lower ? part_rows : edge_rows;
    EXPECT_EQ(label_rows[n]["frequency"], std::to_string(freq[l])) << l;
    EXPECT_EQ(label_rows[n]["coverage"], Fixed6(static_cast<double>(pixels[l]) / grid)) << l;
    EXPECT_EQ(label_rows[n]["category"], cat + "(" + std::to_string(freq[l]) + ")") << l;
    EXPECT_EQ(c_rows[n]["frequency"], std::to_string(freq[l])) << l;
    EXPECT_EQ(c_rows[n]["coverage"], Fixed6(static_cast<double>(pixels[l]) / grid)) << l;
  }
  EXPECT_EQ(edge_rows[std::to_string(hedge)]["code"], "1");
  EXPECT_EQ(edge_rows[std::to_string(vedge)]["code"], "2");
  const BrodenCategory& sp = src->categories()[part];
  const BrodenCategory& xp = x->categories()[part];
  EXPECT_EQ(xp.first, sp.first);
  EXPECT_EQ(xp.last, lower);
  EXPECT_EQ(xp.count, sp.count + 2);
  EXPECT_EQ(xp.frequency, sp.frequency + freq[upper] + freq[lower]);
  const BrodenCategory& xe = x->categories()[edge];
  EXPECT_EQ(xe.first, hedge);
  EXPECT_EQ(xe.last, vedge);
  EXPECT_EQ(xe.count, 2);
  EXPECT_EQ(xe.frequency, freq[hedge] + freq[vedge]);
}

TEST_F(ExpandDatasetTest, OutputDoesNotDependOnTheThreadCount) {
  auto again = Expand("x1", 1);
  ND_ASSERT_OK(again);
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(root_ / "x")) {
    if (!e.is_regular_file()) continue;
    const fs::path rel = fs::relative(e.path(), root_ / "x");
    EXPECT_EQ(ReadAll(e.path()), ReadAll(root_ / "x1" / rel)) << rel;
  }
}

TEST_F(ExpandDatasetTest, ExpandingAnExpandedSetOrIntoTheSourceIsAnError) {
  auto twice = Expand("xx", 1, "x");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("category 'edge' already exists"), std::string::npos)
      << twice.status().message();
  EXPECT_FALSE(fs::exists(root_ / "xx"));
  auto onto = Expand("src", 1);
  ASSERT_FALSE(onto.ok());
  EXPECT_NE(onto.status().message().find("is the source directory"), std::string::npos)
      << onto.status().message();
  EXPECT_TRUE(fs::exists(root_ / "src" / "index.csv"));
}

}  // namespace
}  // namespace nd
