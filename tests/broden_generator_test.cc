// Tests of nd-make-broden (tools/make_broden): label vocabulary, colour naming, scene rules,
// determinism, the on-disk layout, and an independent recount of every statistic through the
// Broden reader (common/broden/broden_dataset.h).
#include "tools/make_broden/broden_generator.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/broden/broden_dataset.h"
#include "common/broden/csv.h"
#include "tests/testing/files.h"
#include "tests/testing/status_assertions.h"
#include "tools/make_broden/synth_labels.h"

namespace nd {
namespace {

using ::nd::testing::ReadAll;

namespace fs = std::filesystem;
using namespace nd::synth;  // NOLINT: the label constants

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : s) {
    if (ch == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  out.push_back(cur);
  return out;
}

std::string Fixed6(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6f", v);
  return buf;
}

class BrodenGeneratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::path(::testing::TempDir()) /
            ("nd_gen_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  // Generates a dataset into root_/name and returns its path.
  fs::path Generate(const std::string& name, int64_t n, uint64_t seed, int threads,
                    int size = 224) {
    BrodenGeneratorOptions o;
    o.out_dir = (root_ / name).string();
    o.num_images = n;
    o.seed = seed;
    o.threads = threads;
    o.image_size = size;
    BrodenGenerator gen(o);
    auto summary = gen.Run();
    ND_EXPECT_OK(summary);
    if (summary.ok()) last_summary_ = *summary;
    return root_ / name;
  }

  fs::path root_;
  BrodenGeneratorSummary last_summary_;
};

// ---------------------------------------------------------------------------------------------
// Vocabulary, colour naming, scene rules.

TEST(SynthLabelsTest, TableFollowsBrodenNamingAndCoversAllCategories) {
  std::set<std::string> names;
  std::vector<int> per_category(kNumCategories, 0);
  for (int l = 1; l < kNumLabels; ++l) {
    const LabelInfo& info = GetLabelInfo(l);
    const std::string name = info.name;
    EXPECT_TRUE(names.insert(name).second) << "duplicate name " << name;
    EXPECT_NE(info.categories, 0u) << name << " has no category";
    EXPECT_EQ(name.find_first_of(",\"\n"), std::string::npos) << name;
    const bool color = info.categories & (1u << kColor);
    const bool scene = info.categories & (1u << kScene);
    const bool ends_c = name.size() > 2 && name.compare(name.size() - 2, 2, "-c") == 0;
    const bool ends_s = name.size() > 2 && name.compare(name.size() - 2, 2, "-s") == 0;
    EXPECT_EQ(color, ends_c) << name;
    EXPECT_EQ(scene, ends_s) << name;
    for (int c = 0; c < kNumCategories; ++c) per_category[c] += (info.categories >> c) & 1u;
  }
  EXPECT_GE(kNumLabels - 1, 40);
  EXPECT_EQ(per_category[kColor], 11);
  for (int c = 0; c < kNumCategories; ++c) EXPECT_GE(per_category[c], 6) << CategoryName(c);
  // The labels that occur in two categories.
  EXPECT_EQ(GetLabelInfo(kGrass).categories, (1u << kObject) | (1u << kMaterial));
  EXPECT_EQ(GetLabelInfo(kWater).categories, (1u << kObject) | (1u << kMaterial));
}

TEST(SynthLabelsTest, ColorNamesOfHandPickedColors) {
  struct Case {
    uint8_t r, g, b;
    Label want;
  };
  const Case cases[] = {
      {0, 0, 0, kBlackC},       {20, 25, 30, kBlackC},    {255, 255, 255, kWhiteC},
      {240, 240, 235, kWhiteC}, {128, 128, 128, kGreyC},  {90, 95, 100, kGreyC},
      {220, 20, 20, kRedC},     {180, 30, 50, kRedC},     {30, 60, 200, kBlueC},
      {0, 200, 220, kBlueC},    {20, 40, 110, kBlueC},    {30, 160, 40, kGreenC},
      {20, 80, 30, kGreenC},    {250, 220, 30, kYellowC}, {255, 140, 0, kOrangeC},
      {120, 70, 20, kBrownC},   {160, 120, 80, kBrownC},  {255, 170, 190, kPinkC},
      {240, 80, 200, kPinkC},   {120, 40, 160, kPurpleC}, {90, 20, 110, kPurpleC},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(GetLabelInfo(ColorLabel(c.r, c.g, c.b)).name, std::string(GetLabelInfo(c.want).name))
        << "rgb(" << int(c.r) << "," << int(c.g) << "," << int(c.b) << ")";
  }
  // Every colour gets one of the 11 terms.
  for (int r = 0; r < 256; r += 5) {
    for (int g = 0; g < 256; g += 5) {
      for (int b = 0; b < 256; b += 5) {
        const Label l = ColorLabel(r, g, b);
        ASSERT_GE(l, kBlackC);
        ASSERT_LE(l, kYellowC);
      }
    }
  }
}

TEST(SynthLabelsTest, SceneRulesInOrder) {
  const int64_t grid = 100 * 100;  // present: >= 50 pixels; major: >= 1500
  auto scene = [&](std::map<Label, int64_t> obj, std::map<Label, int64_t> mat) {
    std::vector<int64_t> o(kNumLabels, 0), m(kNumLabels, 0);
    for (auto [l, n] : obj) o[l] = n;
    for (auto [l, n] : mat) m[l] = n;
    return std::string(GetLabelInfo(SceneForCounts(o, m, grid)).name);
  };
  EXPECT_EQ(scene({{kCar, 300}, {kHouse, 900}, {kRoad, 4000}}, {{kAsphalt, 4000}}), "street-s");
  EXPECT_EQ(scene({{kCar, 300}, {kRoad, 4000}}, {{kAsphalt, 4000}}), "parking_lot-s");
  // A house of 49 pixels is not present: parking lot, not street.
  EXPECT_EQ(scene({{kCar, 300}, {kHouse, 49}}, {{kAsphalt, 4000}}), "parking_lot-s");
  EXPECT_EQ(scene({{kCar, 300}, {kHouse, 50}}, {{kAsphalt, 4000}}), "street-s");
  // Car and house without asphalt (a car in a yard) is a yard when there is grass.
  EXPECT_EQ(scene({{kCar, 300}, {kHouse, 900}, {kGrass, 3000}}, {{kGrass, 2900}}), "yard-s");
  EXPECT_EQ(scene({{kWater, 3000}, {kSand, 2000}, {kBoat, 200}}, {}), "beach-s");
  EXPECT_EQ(scene({{kWater, 3000}, {kBoat, 200}}, {}), "harbor-s");
  EXPECT_EQ(scene({{kTree, 1500}, {kGrass, 3000}, {kHouse, 500}}, {}), "forest-s");
  EXPECT_EQ(scene({{kTree, 1499}, {kGrass, 3000}, {kHouse, 500}}, {}), "yard-s");
  EXPECT_EQ(scene({{kGrass, 3000}, {kPerson, 200}}, {}), "park-s");
  EXPECT_EQ(scene({{kGrass, 3000}, {kDog, 60}}, {}), "park-s");
  EXPECT_EQ(scene({{kGrass, 3000}, {kTree, 600}}, {}), "-");
  EXPECT_EQ(scene({{kBed, 1200}, {kFloor, 3000}, {kWall, 4000}}, {}), "bedroom-s");
  EXPECT_EQ(scene({{kTable, 800}, {kChair, 300}, {kFloor, 3000}}, {}), "dining_room-s");
  EXPECT_EQ(scene({{kTable, 800}, {kFloor, 3000}}, {}), "-");
  EXPECT_EQ(scene({}, {}), "-");
}

TEST(BrodenGeneratorStaticTest, SegmentationSizeIsHalfTheImage) {
  EXPECT_EQ(BrodenGenerator::SegSize(224), 112);
  EXPECT_EQ(BrodenGenerator::SegSize(227), 113);
  EXPECT_EQ(BrodenGenerator::SegSize(384), 192);
}

// ---------------------------------------------------------------------------------------------
// Determinism.

TEST_F(BrodenGeneratorTest, SameSeedSameBytesForAnyThreadCount) {
  const fs::path a = Generate("a", 24, 7, 1);
  const fs::path b = Generate("b", 24, 7, 3);
  const fs::path c = Generate("c", 24, 8, 2);
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(a)) {
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), a).string());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GT(files.size(), 24u * 3);
  size_t files_in_b = 0;
  for (const auto& e : fs::recursive_directory_iterator(b)) files_in_b += e.is_regular_file();
  EXPECT_EQ(files_in_b, files.size());
  for (const std::string& f : files) {
    EXPECT_EQ(ReadAll(a / f), ReadAll(b / f)) << f << " differs between 1 and 3 threads";
  }
  // Another seed gives other data.
  EXPECT_NE(ReadAll(a / "label.csv"), ReadAll(c / "label.csv"));
  EXPECT_NE(ReadAll(a / "images/synth/000001.jpg"), ReadAll(c / "images/synth/000001.jpg"));
  EXPECT_NE(ReadAll(a / "index.csv"), ReadAll(c / "index.csv"));
}

TEST_F(BrodenGeneratorTest, PrefixOfALargerDatasetIsTheSame) {
  // Image i depends on (seed, i) only.
  const fs::path small = Generate("small", 5, 3, 2);
  const fs::path large = Generate("large", 12, 3, 2);
  for (const char* f : {"000001.jpg", "000003_object.png", "000005_color.png"}) {
    EXPECT_EQ(ReadAll(small / "images/synth" / f), ReadAll(large / "images/synth" / f)) << f;
  }
  const auto small_rows = Split(ReadAll(small / "index.csv"), '\n');
  const auto large_rows = Split(ReadAll(large / "index.csv"), '\n');
  for (size_t i = 0; i + 1 < small_rows.size(); ++i) EXPECT_EQ(small_rows[i], large_rows[i]);
}

// ---------------------------------------------------------------------------------------------
// Layout.

TEST_F(BrodenGeneratorTest, LayoutMatchesBroden) {
  const int n = 40;
  const fs::path dir = Generate("ds", n, 11, 2);
  const std::string index = ReadAll(dir / "index.csv");
  const auto lines = Split(index, '\n');
  ASSERT_EQ(lines.size(), static_cast<size_t>(n + 2));  // header, n rows, "" after the last \n
  EXPECT_EQ(lines[0], "image,split,ih,iw,sh,sw,color,object,material,part,scene,texture");
  EXPECT_EQ(ReadAll(dir / "category.csv").substr(0, 32), "name,first,last,count,frequency\n");
  EXPECT_EQ(ReadAll(dir / "label.csv").substr(0, 45),
            "number,name,category,frequency,coverage,syns\n");
  int two_part_layers = 0, texture_rows = 0, scene_rows = 0, val_rows = 0;
  for (int i = 1; i <= n; ++i) {
    const auto cells = Split(lines[i], ',');
    ASSERT_EQ(cells.size(), 12u) << lines[i];
    char want_image[32];
    std::snprintf(want_image, sizeof(want_image), "synth/%06d.jpg", i);
    EXPECT_EQ(cells[0], want_image);
    EXPECT_TRUE(cells[1] == "train" || cells[1] == "val") << cells[1];
    val_rows += cells[1] == "val";
    EXPECT_EQ(cells[2], "224");
    EXPECT_EQ(cells[3], "224");
    EXPECT_EQ(cells[4], "112");
    EXPECT_EQ(cells[5], "112");
    const cv::Mat photo = cv::imread((dir / "images" / cells[0]).string(), cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(photo.empty()) << cells[0];
    EXPECT_EQ(photo.rows, 224);
    EXPECT_EQ(photo.cols, 224);
    EXPECT_EQ(photo.type(), CV_8UC3);
    for (int c = 6; c < 12; ++c) {
      if (cells[c].empty()) continue;
      const auto items = Split(cells[c], ';');
      if (c == 6 + kPart && items.size() == 2) ++two_part_layers;
      for (const std::string& item : items) {
        ASSERT_FALSE(item.empty()) << lines[i];
        if (c == 6 + kScene || c == 6 + kTexture) {
          ASSERT_EQ(item.find_first_not_of("0123456789"), std::string::npos) << item;
          const int l = std::stoi(item);
          EXPECT_TRUE(GetLabelInfo(l).categories & (1u << (c - 6))) << item;
          continue;
        }
        const cv::Mat png = cv::imread((dir / "images" / item).string(), cv::IMREAD_UNCHANGED);
        ASSERT_FALSE(png.empty()) << item;
        EXPECT_EQ(png.rows, 112) << item;
        EXPECT_EQ(png.cols, 112) << item;
        EXPECT_EQ(png.type(), CV_8UC3) << item;
      }
    }
    texture_rows += !cells[6 + kTexture].empty();
    scene_rows += !cells[6 + kScene].empty();
    // Texture images have only a colour layer; scene images have object and material layers.
    if (!cells[6 + kTexture].empty()) {
      EXPECT_TRUE(cells[6 + kObject].empty() && cells[6 + kMaterial].empty() &&
                  cells[6 + kPart].empty() && cells[6 + kScene].empty())
          << lines[i];
    } else {
      EXPECT_FALSE(cells[6 + kObject].empty()) << lines[i];
    }
    EXPECT_FALSE(cells[6 + kColor].empty());
  }
  EXPECT_GT(two_part_layers, 0) << "no image has parts of parts (x_part_1.png;x_part_2.png)";
  EXPECT_GT(texture_rows, 0);
  EXPECT_GT(scene_rows, n / 2);
  EXPECT_GT(val_rows, 0);
  EXPECT_LT(val_rows, n / 2);
  // No partial directory is left behind.
  for (const auto& e : fs::directory_iterator(root_)) {
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
  }
}

TEST_F(BrodenGeneratorTest, OtherImageSizesHaveHalfSizeSegmentation) {
  const fs::path dir = Generate("s227", 4, 5, 2, 227);
  const auto lines = Split(ReadAll(dir / "index.csv"), '\n');
  const auto cells = Split(lines[1], ',');
  EXPECT_EQ(cells[2], "227");
  EXPECT_EQ(cells[4], "113");
  const cv::Mat png = cv::imread((dir / "images" / cells[6]).string(), cv::IMREAD_UNCHANGED);
  EXPECT_EQ(png.rows, 113);
  EXPECT_EQ(png.cols, 113);
}

// ---------------------------------------------------------------------------------------------
// The reader reads it, and an independent recount gives the written statistics.

TEST_F(BrodenGeneratorTest, ReaderRecountMatchesWrittenStatistics) {
  const fs::path dir = Generate("ds", 36, 21, 2);
  auto ds = BrodenDataset::Open(dir.string());
  ND_ASSERT_OK(ds);
  ASSERT_EQ(ds->num_labels(), kNumLabels);
  ASSERT_EQ(ds->categories().size(), static_cast<size_t>(kNumCategories));
  for (int c = 0; c < kNumCategories; ++c) EXPECT_EQ(ds->categories()[c].name, CategoryName(c));
  ASSERT_EQ(ds->images().size(), 36u);

  // Recount: per category, images containing the label and pixels carrying it.
  std::vector<std::vector<int64_t>> freq(kNumCategories, std::vector<int64_t>(kNumLabels, 0));
  std::vector<std::vector<int64_t>> pix(kNumCategories, std::vector<int64_t>(kNumLabels, 0));
  int64_t grid = 0;
  for (size_t i = 0; i < ds->images().size(); ++i) {
    auto labels = ds->ReadLabels(i);
    ND_ASSERT_OK(labels);
    grid = static_cast<int64_t>(labels->sh) * labels->sw;
    std::vector<std::set<int>> seen(kNumCategories);
    for (size_t k = 0; k < labels->layers.size(); ++k) {
      const int c = labels->layer_category[k];
      for (uint16_t l : labels->layers[k]) {
        if (l == 0) continue;
        ++pix[c][l];
        seen[c].insert(l);
      }
    }
    for (size_t k = 0; k < labels->scalar_labels.size(); ++k) {
      const int c = labels->scalar_category[k], l = labels->scalar_labels[k];
      pix[c][l] += grid;
      seen[c].insert(l);
    }
    for (int c = 0; c < kNumCategories; ++c) {
      for (int l : seen[c]) ++freq[c][l];
    }
  }
  ASSERT_EQ(grid, 112 * 112);

  // c_<cat>.csv: one row per label drawn in the category, with the recounted statistics.
  for (int c = 0; c < kNumCategories; ++c) {
    auto table =
        CsvTable::ReadFile((dir / ("c_" + std::string(CategoryName(c)) + ".csv")).string());
    ND_ASSERT_OK(table);
    const int code_col = table->ColumnIndex("code"), num_col = table->ColumnIndex("number");
    const int freq_col = table->ColumnIndex("frequency"), cov_col = table->ColumnIndex("coverage");
    ASSERT_GE(std::min({code_col, num_col, freq_col, cov_col}), 0);
    std::set<int> rows;
    for (size_t r = 0; r < table->num_rows(); ++r) {
      EXPECT_EQ(table->cell(r, code_col), std::to_string(r + 1));
      const int l = std::stoi(table->cell(r, num_col));
      rows.insert(l);
      EXPECT_EQ(table->cell(r, freq_col), std::to_string(freq[c][l]))
          << CategoryName(c) << " " << GetLabelInfo(l).name;
      EXPECT_EQ(table->cell(r, cov_col), Fixed6(static_cast<double>(pix[c][l]) / grid))
          << CategoryName(c) << " " << GetLabelInfo(l).name;
      EXPECT_NEAR(ds->labels()[l].coverage[c], static_cast<double>(pix[c][l]) / grid, 1e-6);
    }
    for (int l = 1; l < kNumLabels; ++l) {
      EXPECT_EQ(rows.count(l) == 1, ((GetLabelInfo(l).categories >> c) & 1u) == 1u)
          << CategoryName(c) << " " << GetLabelInfo(l).name;
      if (!rows.count(l)) {
        EXPECT_EQ(freq[c][l], 0) << GetLabelInfo(l).name << " found in undeclared "
                                 << CategoryName(c);
      }
    }
  }
  // label.csv: frequency and coverage summed over categories; "cat(n)" list most frequent first.
  auto label_csv = CsvTable::ReadFile((dir / "label.csv").string());
  ND_ASSERT_OK(label_csv);
  ASSERT_EQ(label_csv->num_rows(), static_cast<size_t>(kNumLabels - 1));
  int present = 0;
  for (size_t r = 0; r < label_csv->num_rows(); ++r) {
    const int l = std::stoi(label_csv->cell(r, label_csv->ColumnIndex("number")));
    EXPECT_EQ(l, static_cast<int>(r + 1));
    EXPECT_EQ(label_csv->cell(r, label_csv->ColumnIndex("name")), GetLabelInfo(l).name);
    int64_t f = 0, p = 0;
    std::vector<std::pair<int64_t, int>> cats;
    for (int c = 0; c < kNumCategories; ++c) {
      f += freq[c][l];
      p += pix[c][l];
      if ((GetLabelInfo(l).categories >> c) & 1u) cats.push_back({-freq[c][l], c});
    }
    std::sort(cats.begin(), cats.end());
    std::string cat_text;
    for (auto [nf, c] : cats) {
      cat_text += (cat_text.empty() ? "" : ";") + std::string(CategoryName(c)) + "(" +
                  std::to_string(-nf) + ")";
    }
    EXPECT_EQ(label_csv->cell(r, label_csv->ColumnIndex("category")), cat_text);
    EXPECT_EQ(ds->labels()[l].frequency, f) << GetLabelInfo(l).name;
    EXPECT_EQ(label_csv->cell(r, label_csv->ColumnIndex("coverage")),
              Fixed6(static_cast<double>(p) / grid));
    present += f > 0;
  }
  EXPECT_GE(present, 60) << "36 images should show most of the vocabulary";
  // Shared stuff labels are primarily objects (coarser object annotation).
  for (Label l : {kGrass, kSand, kWater}) {
    if (freq[kObject][l] > 0) {
      EXPECT_GT(pix[kObject][l], pix[kMaterial][l]) << GetLabelInfo(l).name;
      EXPECT_EQ(ds->PrimaryCategory(l), kObject) << GetLabelInfo(l).name;
    }
  }
  EXPECT_EQ(ds->PrimaryCategory(kCar), kObject);
  EXPECT_EQ(ds->PrimaryCategory(kWheel), kPart);
  EXPECT_EQ(ds->PrimaryCategory(kRedC), kColor);
}

TEST_F(BrodenGeneratorTest, SceneLabelsFollowTheRules) {
  const fs::path dir = Generate("ds", 40, 33, 2);
  auto ds = BrodenDataset::Open(dir.string());
  ND_ASSERT_OK(ds);
  std::set<int> scenes;
  for (size_t i = 0; i < ds->images().size(); ++i) {
    auto labels = ds->ReadLabels(i);
    ND_ASSERT_OK(labels);
    std::vector<int64_t> object(kNumLabels, 0), material(kNumLabels, 0);
    bool has_object_layer = false;
    for (size_t k = 0; k < labels->layers.size(); ++k) {
      auto& counts = labels->layer_category[k] == kObject ? object : material;
      if (labels->layer_category[k] == kObject) has_object_layer = true;
      if (labels->layer_category[k] != kObject && labels->layer_category[k] != kMaterial) continue;
      for (uint16_t l : labels->layers[k]) counts[l] += l != 0;
    }
    int scene = 0, texture = 0;
    for (size_t k = 0; k < labels->scalar_labels.size(); ++k) {
      if (labels->scalar_category[k] == kScene) scene = labels->scalar_labels[k];
      if (labels->scalar_category[k] == kTexture) texture = labels->scalar_labels[k];
    }
    if (texture) {
      EXPECT_FALSE(has_object_layer);
      EXPECT_EQ(scene, 0);
      continue;
    }
    ASSERT_TRUE(has_object_layer) << ds->images()[i].image;
    EXPECT_EQ(scene, SceneForCounts(object, material, int64_t{112} * 112)) << ds->images()[i].image;
    scenes.insert(scene);
  }
  EXPECT_GE(scenes.size(), 5u) << "40 images should show several scenes";
}

// ---------------------------------------------------------------------------------------------
// Options and errors.

TEST_F(BrodenGeneratorTest, RejectsBadOptionsWithOneLineErrors) {
  BrodenGeneratorOptions o;
  o.out_dir = (root_ / "x").string();
  o.num_images = 0;
  Status s = BrodenGenerator(o).Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("images"), std::string::npos) << s.message();
  o.num_images = 2;
  o.image_size = 8;
  EXPECT_EQ(BrodenGenerator(o).Validate().code(), StatusCode::kInvalidArgument);
  o.image_size = 224;
  o.out_dir = "";
  EXPECT_EQ(BrodenGenerator(o).Validate().code(), StatusCode::kInvalidArgument);
  // A file where the directory should be.
  const fs::path file = root_ / "file";
  std::ofstream(file) << "x";
  o.out_dir = file.string();
  s = BrodenGenerator(o).Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("not a directory"), std::string::npos) << s.message();
  // A directory that cannot be created (its parent is a file): an I/O error naming the path.
  o.out_dir = (file / "sub").string();
  auto r = BrodenGenerator(o).Run();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_NE(r.status().message().find("sub"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
}

TEST_F(BrodenGeneratorTest, RefusesNonEmptyDirectoryUnlessReplacingADataset) {
  const fs::path other = root_ / "other";
  fs::create_directories(other);
  std::ofstream(other / "precious.txt") << "keep";
  BrodenGeneratorOptions o;
  o.out_dir = other.string();
  o.num_images = 2;
  o.overwrite = true;
  auto r = BrodenGenerator(o).Run();
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(fs::exists(other / "precious.txt"));

  const fs::path ds = Generate("ds", 3, 1, 1);
  o.out_dir = ds.string();
  o.overwrite = false;
  r = BrodenGenerator(o).Run();
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  o.overwrite = true;
  o.seed = 2;
  r = BrodenGenerator(o).Run();
  ND_ASSERT_OK(r);
  EXPECT_EQ(Split(ReadAll(ds / "index.csv"), '\n').size(), 4u);  // header + 2 rows + ""
  EXPECT_FALSE(fs::exists(ds / "images/synth/000003.jpg"));      // the old dataset is gone
  // An empty directory is fine.
  const fs::path empty = root_ / "empty";
  fs::create_directories(empty);
  o.out_dir = empty.string();
  o.overwrite = false;
  ND_EXPECT_OK(BrodenGenerator(o).Run());
  EXPECT_TRUE(fs::exists(empty / "index.csv"));
}

TEST_F(BrodenGeneratorTest, SummaryCountsImages) {
  Generate("ds", 30, 4, 2);
  const BrodenGeneratorSummary& s = last_summary_;
  EXPECT_EQ(s.num_images, 30);
  EXPECT_EQ(s.num_train + s.num_val, 30);
  int64_t scene_total = 0;
  for (int64_t n : s.scene_images) scene_total += n;
  EXPECT_EQ(scene_total + s.num_texture_images, 30);
  EXPECT_EQ(s.labels_in_category[kColor], 11);
  const std::string text = FormatSummary(s);
  EXPECT_NE(text.find("images/s"), std::string::npos);
  EXPECT_NE(text.find("texture"), std::string::npos);
}

// The CLI, as users run it. Skipped when the executable has not been built.
TEST_F(BrodenGeneratorTest, CommandLine) {
  const std::string bin = std::string(ND_BIN_DIR) + "/nd-make-broden";
  if (!fs::exists(bin)) GTEST_SKIP() << bin << " not built";
  auto run = [&](const std::string& args) {
    const std::string cmd = bin + " " + args + " >" + (root_ / "out.txt").string() + " 2>&1";
    const int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  EXPECT_EQ(run("--images 2"), 2);
  EXPECT_NE(ReadAll(root_ / "out.txt").find("--out"), std::string::npos);
  EXPECT_EQ(run("--out " + (root_ / "d").string() + " --images abc"), 2);
  const std::string msg = ReadAll(root_ / "out.txt");
  EXPECT_EQ(msg, "nd-make-broden: --images: 'abc' is not an integer\n");
  EXPECT_EQ(run("--out " + (root_ / "d").string() + " --images 2 --bogus"), 2);
  EXPECT_EQ(run("--out " + (root_ / "d").string() + " --images 3 --seed 5 --threads 2"), 0);
  EXPECT_TRUE(fs::exists(root_ / "d" / "index.csv"));
  EXPECT_NE(ReadAll(root_ / "out.txt").find("3 images"), std::string::npos);
  EXPECT_EQ(run("--out " + (root_ / "d").string() + " --images 3"), 2);  // not empty
}

// Regression (issue 16): grass, sand and water were written in both the object and the material
// layer at the same pixels, so their truth and intersections were counted twice. Checked over every
// pixel of every layer of every image, for two seeds and both image sizes the demo uses.
TEST_F(BrodenGeneratorTest, NoLabelSitsInTwoLayersAtOnePixel) {
  for (const auto& [seed, size] : std::vector<std::pair<uint64_t, int>>{{1, 224}, {7, 128}}) {
    SCOPED_TRACE(size);
    const fs::path dir = Generate("once" + std::to_string(seed), 60, seed, 2, size);
    auto ds = BrodenDataset::Open(dir.string());
    ND_ASSERT_OK(ds);
    int64_t stuff_pixels = 0;
    for (size_t i = 0; i < ds->images().size(); ++i) {
      auto labels = ds->ReadLabels(i);
      ND_ASSERT_OK(labels);
      const size_t n = static_cast<size_t>(labels->sh) * labels->sw;
      for (size_t p = 0; p < n; ++p) {
        std::set<uint16_t> seen;
        for (const auto& layer : labels->layers) {
          const uint16_t l = layer[p];
          if (l == 0) continue;
          stuff_pixels += l == kGrass || l == kSand || l == kWater;
          ASSERT_TRUE(seen.insert(l).second)
              << ds->images()[i].image << ": pixel " << p << " carries label " << l << " twice";
        }
        for (int s : labels->scalar_labels) {
          ASSERT_EQ(seen.count(static_cast<uint16_t>(s)), 0u) << ds->images()[i].image;
        }
      }
    }
    EXPECT_GT(stuff_pixels, 0) << "the check must see grass, sand or water at all";
  }
}

}  // namespace
}  // namespace nd
