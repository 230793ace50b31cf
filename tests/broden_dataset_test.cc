// Tests of the Broden reader (common/broden/broden_dataset.h) on small hand-written datasets.
//
// Every test writes its own dataset into a fresh temp dir: CSVs as text, PNG layers with
// cv::imwrite. The default dataset (kCategoryCsv ... kIndexCsv below) has three images with
// 4x4 segmentations, categories object, part, scene, and column orders that differ from the
// original release to check that everything is read by header name.
#include "common/broden/broden_dataset.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace nd {
namespace {

namespace fs = std::filesystem;
using Layer = std::vector<uint16_t>;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

// category.csv rows in category-index order; the count/first/last are those of the labels below.
constexpr char kCategoryCsv[] =
    "name,first,last,count,frequency\r\n"
    "object,1,4,4,5\r\n"
    "part,3,5,2,2\r\n"
    "scene,6,7,2,3\r\n";

// Columns shuffled relative to the original (number,name,category,frequency,coverage,syns).
constexpr char kLabelCsv[] =
    "name,number,coverage,frequency,category,syns\r\n"
    "sky,1,0.5,2,object(2),\r\n"
    "tree,2,0.25,1,object(1),plant;shrub\r\n"
    "wheel,3,0.3,2,part(1);object(1),\r\n"
    "car,4,0.2,1,object(1),\r\n"
    "door,5,0.1,1,part(1),\r\n"
    "street-s,6,2.0,2,scene(2),\r\n"
    "\"beach, sandy-s\",7,1.0,1,scene(1),\r\n";

// wheel (3) is in object (0.1) and part (0.2): primary part.
constexpr char kObjectCsv[] =
    "code,number,name,frequency,coverage\r\n"
    "1,1,sky,2,0.5\r\n"
    "2,2,tree,1,0.25\r\n"
    "3,4,car,1,0.2\r\n"
    "4,3,wheel,1,0.1\r\n";
constexpr char kPartCsv[] =
    "code,number,name,frequency,coverage\r\n"
    "1,3,wheel,1,0.2\r\n"
    "2,5,door,1,0.1\r\n";
constexpr char kSceneCsv[] =
    "number,code,coverage,name,frequency\r\n"  // shuffled on purpose
    "6,1,2.0,street-s,2\r\n"
    "7,2,1.0,\"beach, sandy-s\",1\r\n";

// Lines: header 1, a 2, b 3, c 4.
constexpr char kIndexCsv[] =
    "scene,image,ih,iw,sh,sw,split,object,part\r\n"
    "6,ade/a.jpg,8,8,4,4,train,ade/a_object.png,ade/a_part_1.png;ade/a_part_2.png\r\n"
    "6;7,ade/b.jpg,8,6,4,4,val,ade/b_object.png,\r\n"
    ",dtd/c.jpg,8,8,4,4,train,,\r\n";

// The label layers of the default dataset, row-major 4x4.
const Layer kAObject = {1, 1, 1, 1,  //
                        1, 1, 2, 2,  //
                        0, 4, 4, 2,  //
                        0, 4, 4, 0};
const Layer kAPart1 = {0, 0, 0, 0,  //
                       0, 0, 0, 0,  //
                       0, 3, 0, 0,  //
                       0, 0, 3, 0};
const Layer kAPart2 = {0, 0, 0, 0,  //
                       0, 0, 0, 0,  //
                       0, 5, 5, 0,  //
                       0, 5, 0, 0};
const Layer kBObject = {1, 1, 1, 1,  //
                        1, 1, 1, 1,  //
                        3, 3, 0, 0,  //
                        3, 3, 0, 0};

// Writes a Broden-coded PNG: label = R + 256*G, with a non-zero blue channel that must be ignored.
void WriteLabelPng(const std::string& path, int rows, int cols, const Layer& labels,
                   int channels = 3) {
  cv::Mat mat(rows, cols, CV_8UC(channels));
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      uint8_t* px = mat.ptr<uint8_t>(r) + c * channels;
      const uint16_t v = labels[r * cols + c];
      px[0] = 77;                             // B
      px[1] = static_cast<uint8_t>(v / 256);  // G
      px[2] = static_cast<uint8_t>(v % 256);  // R
      if (channels == 4) px[3] = 128;         // A
    }
  }
  ASSERT_TRUE(cv::imwrite(path, mat)) << path;
}

class BrodenDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::path(::testing::TempDir()) / "nd_broden_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
    files_ = {{"category.csv", kCategoryCsv}, {"label.csv", kLabelCsv},
              {"c_object.csv", kObjectCsv},   {"c_part.csv", kPartCsv},
              {"c_scene.csv", kSceneCsv},     {"index.csv", kIndexCsv}};
    pngs_ = {{"ade/a_object.png", kAObject},
             {"ade/a_part_1.png", kAPart1},
             {"ade/a_part_2.png", kAPart2},
             {"ade/b_object.png", kBObject}};
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // Writes files_ and pngs_ (4x4) under root_.
  void WriteDataset() {
    for (const auto& [name, text] : files_) WriteText(name, text);
    for (const auto& [name, layer] : pngs_) WritePng(name, layer);
  }
  void WriteText(const std::string& name, const std::string& text) {
    const fs::path path = fs::path(root_) / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << text;
  }
  void WritePng(const std::string& name, const Layer& layer, int rows = 4, int cols = 4) {
    const fs::path path = fs::path(root_) / "images" / name;
    fs::create_directories(path.parent_path());
    WriteLabelPng(path.string(), rows, cols, layer);
  }
  StatusOr<BrodenDataset> Open(std::vector<std::string> categories = {}) {
    WriteDataset();
    BrodenOptions options;
    options.categories = std::move(categories);
    return BrodenDataset::Open(root_, options);
  }

  std::string root_;
  std::map<std::string, std::string> files_;
  std::map<std::string, Layer> pngs_;
};

TEST_F(BrodenDatasetTest, RoundTripOfThreeImageDataset) {
  StatusOr<BrodenDataset> ds = Open();
  ASSERT_TRUE(ds.ok()) << ds.status().message();

  ASSERT_EQ(ds->categories().size(), 3u);
  EXPECT_EQ(ds->categories()[0].name, "object");
  EXPECT_EQ(ds->categories()[1].name, "part");
  EXPECT_EQ(ds->categories()[2].name, "scene");
  EXPECT_EQ(ds->categories()[0].last, 4);
  EXPECT_EQ(ds->categories()[2].frequency, 3);
  for (const BrodenCategory& c : ds->categories()) EXPECT_TRUE(c.selected) << c.name;
  EXPECT_EQ(ds->CategoryIndex("scene"), 2);
  EXPECT_EQ(ds->CategoryIndex("color"), -1);

  ASSERT_EQ(ds->num_labels(), 8);
  EXPECT_FALSE(ds->labels()[0].defined);
  EXPECT_EQ(ds->labels()[2].name, "tree");
  EXPECT_EQ(ds->labels()[7].name, "beach, sandy-s");
  EXPECT_EQ(ds->labels()[3].frequency, 2);
  EXPECT_DOUBLE_EQ(ds->labels()[3].label_coverage, 0.3);
  EXPECT_DOUBLE_EQ(ds->labels()[3].coverage[0], 0.1);
  EXPECT_DOUBLE_EQ(ds->labels()[3].coverage[1], 0.2);
  EXPECT_LT(ds->labels()[3].coverage[2], 0);  // no row in c_scene.csv
  const std::vector<int> primary = {-1, 0, 0, 1, 0, 1, 2, 2};
  for (int l = 0; l < 8; ++l) EXPECT_EQ(ds->PrimaryCategory(l), primary[l]) << "label " << l;

  ASSERT_EQ(ds->images().size(), 3u);
  const BrodenImage& b = ds->images()[1];
  EXPECT_EQ(b.row, 1);
  EXPECT_EQ(b.line, 3);
  EXPECT_EQ(b.image, "ade/b.jpg");
  EXPECT_EQ(b.split, "val");
  EXPECT_EQ(b.ih, 8);
  EXPECT_EQ(b.iw, 6);
  EXPECT_EQ(b.sh, 4);
  EXPECT_EQ(b.sw, 4);
  EXPECT_EQ(b.pixel_layers[0], std::vector<std::string>{"ade/b_object.png"});
  EXPECT_TRUE(b.pixel_layers[1].empty());
  EXPECT_EQ(b.scalar_labels[2], (std::vector<int>{6, 7}));
  EXPECT_EQ(ds->images()[0].pixel_layers[1],
            (std::vector<std::string>{"ade/a_part_1.png", "ade/a_part_2.png"}));

  StatusOr<ImageLabels> a = ds->ReadLabels(0);
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->sh, 4);
  EXPECT_EQ(a->sw, 4);
  ASSERT_EQ(a->layers.size(), 3u);
  EXPECT_EQ(a->layers[0], kAObject);
  EXPECT_EQ(a->layers[1], kAPart1);
  EXPECT_EQ(a->layers[2], kAPart2);
  EXPECT_EQ(a->layer_category, (std::vector<int>{0, 1, 1}));
  EXPECT_EQ(a->scalar_labels, std::vector<int>{6});
  EXPECT_EQ(a->scalar_category, std::vector<int>{2});

  StatusOr<ImageLabels> c = ds->ReadLabels(2);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_TRUE(c->layers.empty());
  EXPECT_TRUE(c->scalar_labels.empty());

  StatusOr<ImageLabels> out_of_range = ds->ReadLabels(3);
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_TRUE(Contains(out_of_range.status().message(), "out of range"));
}

TEST_F(BrodenDatasetTest, PngLabelsAbove255UseRedPlus256Green) {
  const std::string dir = root_ + "/png";
  fs::create_directories(dir);
  // R=10, G=3 -> 778; R=G=255 -> 65535; B is 77 everywhere and must not leak in.
  const Layer layer = {778, 65535, 0, 255, 256, 1};
  WriteLabelPng(dir + "/rgb.png", 2, 3, layer, 3);
  WriteLabelPng(dir + "/rgba.png", 2, 3, layer, 4);
  for (const char* name : {"/rgb.png", "/rgba.png"}) {
    Layer out = {9, 9, 9};  // stale content must be replaced
    ASSERT_TRUE(DecodeLabelPng(dir + name, 2, 3, &out).ok()) << name;
    EXPECT_EQ(out, layer) << name;
  }

  // Through the dataset: label 778 needs a label.csv row; 777 has none.
  files_["label.csv"] = std::string(kLabelCsv) + "big,778,0.1,1,object(1),\r\n";
  files_["c_object.csv"] = std::string(kObjectCsv) + "5,778,big,1,0.1\r\n";
  pngs_["ade/b_object.png"] = {778, 1, 1, 1, 1, 1, 1, 1, 3, 3, 0, 0, 3, 3, 0, 0};
  StatusOr<BrodenDataset> ds = Open();
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_EQ(ds->num_labels(), 779);
  StatusOr<ImageLabels> b = ds->ReadLabels(1);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->layers[0][0], 778);
}

TEST_F(BrodenDatasetTest, GrayscalePngIsTheLabelNumber) {
  const std::string dir = root_ + "/png";
  fs::create_directories(dir);
  cv::Mat gray16(1, 3, CV_16UC1);
  gray16.at<uint16_t>(0, 0) = 778;
  gray16.at<uint16_t>(0, 1) = 0;
  gray16.at<uint16_t>(0, 2) = 60000;
  ASSERT_TRUE(cv::imwrite(dir + "/g16.png", gray16));
  cv::Mat gray8(1, 3, CV_8UC1);
  gray8.at<uint8_t>(0, 0) = 5;
  gray8.at<uint8_t>(0, 1) = 255;
  gray8.at<uint8_t>(0, 2) = 0;
  ASSERT_TRUE(cv::imwrite(dir + "/g8.png", gray8));
  Layer out;
  ASSERT_TRUE(DecodeLabelPng(dir + "/g16.png", 1, 3, &out).ok());
  EXPECT_EQ(out, (Layer{778, 0, 60000}));
  ASSERT_TRUE(DecodeLabelPng(dir + "/g8.png", 1, 3, &out).ok());
  EXPECT_EQ(out, (Layer{5, 255, 0}));
}

TEST_F(BrodenDatasetTest, DecodeLabelPngRejectsBadFiles) {
  const std::string dir = root_ + "/png";
  fs::create_directories(dir);
  Layer out;

  Status missing = DecodeLabelPng(dir + "/nope.png", 2, 2, &out);
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(missing.message(), dir + "/nope.png: no such file"));

  std::ofstream(dir + "/junk.png") << "this is not a png";
  Status junk = DecodeLabelPng(dir + "/junk.png", 2, 2, &out);
  EXPECT_EQ(junk.code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Contains(junk.message(), "junk.png: cannot read or decode"));

  WriteLabelPng(dir + "/small.png", 2, 3, Layer(6, 1));
  Status size = DecodeLabelPng(dir + "/small.png", 4, 4, &out);
  ASSERT_FALSE(size.ok());
  EXPECT_TRUE(Contains(size.message(), "small.png: size 2x3"));
  EXPECT_TRUE(Contains(size.message(), "4x4"));

  cv::Mat rgb16(2, 2, CV_16UC3, cv::Scalar(1, 2, 3));
  ASSERT_TRUE(cv::imwrite(dir + "/rgb16.png", rgb16));
  Status format = DecodeLabelPng(dir + "/rgb16.png", 2, 2, &out);
  ASSERT_FALSE(format.ok());
  EXPECT_TRUE(
      Contains(format.message(), "rgb16.png: unsupported pixel format (16-bit, 3 channels)"));
}

TEST_F(BrodenDatasetTest, PrimaryCategoryTiesGoToTheLaterCategory) {
  // label 1: object 0.5 = part 0.5 -> part (later). label 2: object 0 (row), nowhere else ->
  // object. label 3: rows nowhere -> -1. label 4: part 0 = scene 0 -> scene.
  files_["category.csv"] =
      "name,first,last,count,frequency\nobject,1,2,2,1\npart,1,4,2,1\n"
      "scene,4,4,1,1\n";
  files_["label.csv"] =
      "number,name,category,frequency,coverage,syns\n1,a,,1,1,\n2,b,,1,1,\n3,c,,1,1,\n"
      "4,d,,1,1,\n";
  files_["c_object.csv"] = "code,number,name,frequency,coverage\n1,1,a,1,0.5\n2,2,b,1,0\n";
  files_["c_part.csv"] = "code,number,name,frequency,coverage\n1,1,a,1,0.5\n2,4,d,1,0.0\n";
  files_["c_scene.csv"] = "code,number,name,frequency,coverage\n1,4,d,1,0\n";
  files_["index.csv"] = "image,split,ih,iw,sh,sw,object,part,scene\n";
  StatusOr<BrodenDataset> ds = Open();
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_EQ(ds->PrimaryCategory(0), -1);
  EXPECT_EQ(ds->PrimaryCategory(1), 1);
  EXPECT_EQ(ds->PrimaryCategory(2), 0);
  EXPECT_EQ(ds->PrimaryCategory(3), -1);
  EXPECT_EQ(ds->PrimaryCategory(4), 2);
  EXPECT_TRUE(ds->images().empty());

  // Swapping the category.csv rows of object and part flips the tie of label 1.
  files_["category.csv"] =
      "name,first,last,count,frequency\npart,1,4,2,1\nobject,1,2,2,1\n"
      "scene,4,4,1,1\n";
  StatusOr<BrodenDataset> swapped = Open();
  ASSERT_TRUE(swapped.ok()) << swapped.status().message();
  EXPECT_EQ(swapped->categories()[1].name, "object");
  EXPECT_EQ(swapped->PrimaryCategory(1), 1);  // now object, the later one
  EXPECT_EQ(swapped->PrimaryCategory(4), 2);
}

TEST_F(BrodenDatasetTest, ScalarLabelsCoverTheWholeImage) {
  StatusOr<BrodenDataset> ds = Open();
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  StatusOr<ImageLabels> b = ds->ReadLabels(1);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->scalar_labels, (std::vector<int>{6, 7}));
  EXPECT_EQ(b->scalar_category, (std::vector<int>{2, 2}));
  ASSERT_EQ(b->layers.size(), 1u);
  EXPECT_EQ(b->layers[0], kBObject);
  EXPECT_EQ(b->layer_category, std::vector<int>{0});
}

TEST_F(BrodenDatasetTest, SeveralLayersInOneCategoryKeepTheirOrderAndOverlap) {
  // Pixel (2,1) carries wheel (3) in layer 1 and door (5) in layer 2 at the same time.
  StatusOr<BrodenDataset> ds = Open();
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  StatusOr<ImageLabels> a = ds->ReadLabels(0);
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_EQ(a->layers.size(), 3u);
  EXPECT_EQ(a->layer_category[1], 1);
  EXPECT_EQ(a->layer_category[2], 1);
  EXPECT_EQ(a->layers[1][2 * 4 + 1], 3);
  EXPECT_EQ(a->layers[2][2 * 4 + 1], 5);
  EXPECT_EQ(a->layers[0][2 * 4 + 1], 4);  // and car in the object layer
}

TEST_F(BrodenDatasetTest, UnselectedCategoriesAreIgnored) {
  // The part column holds garbage that would fail if it were read, and c_part.csv is missing.
  files_.erase("c_part.csv");
  files_["index.csv"] =
      "scene,image,ih,iw,sh,sw,split,object,part\r\n"
      "6,ade/a.jpg,8,8,4,4,train,ade/a_object.png,/abs/../../x.png;;999\r\n"
      "6;7,ade/b.jpg,8,6,4,4,val,ade/b_object.png,no_such.png\r\n";
  StatusOr<BrodenDataset> ds = Open({"scene", "object"});
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_TRUE(ds->categories()[0].selected);
  EXPECT_FALSE(ds->categories()[1].selected);
  EXPECT_TRUE(ds->categories()[2].selected);
  // wheel: object 0.1 is now its only candidate; door is only in part -> -1.
  EXPECT_EQ(ds->PrimaryCategory(3), 0);
  EXPECT_EQ(ds->PrimaryCategory(5), -1);
  EXPECT_LT(ds->labels()[5].coverage[1], 0);
  EXPECT_TRUE(ds->images()[0].pixel_layers[1].empty());
  StatusOr<ImageLabels> a = ds->ReadLabels(0);
  ASSERT_TRUE(a.ok()) << a.status().message();
  ASSERT_EQ(a->layers.size(), 1u);
  EXPECT_EQ(a->layers[0], kAObject);
  EXPECT_EQ(a->layer_category, std::vector<int>{0});
  EXPECT_EQ(a->scalar_category, std::vector<int>{2});
}

TEST_F(BrodenDatasetTest, UnknownSelectedCategoryListsTheKnownOnes) {
  StatusOr<BrodenDataset> ds = Open({"object", "colour"});
  ASSERT_FALSE(ds.ok());
  EXPECT_TRUE(Contains(ds.status().message(), "unknown category 'colour'"));
  EXPECT_TRUE(Contains(ds.status().message(), "object, part, scene"));
}

TEST_F(BrodenDatasetTest, PathsMustStayInsideImagesDir) {
  StatusOr<BrodenDataset> ok = Open();
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  StatusOr<std::string> inside = ok->ResolveImagePath("ade/./x/../a_object.png");
  ASSERT_TRUE(inside.ok()) << inside.status().message();
  EXPECT_EQ(*inside, root_ + "/images/ade/a_object.png");
  EXPECT_TRUE(Contains(ok->ResolveImagePath("../index.csv").status().message(), "escapes"));
  EXPECT_TRUE(Contains(ok->ResolveImagePath("/etc/passwd").status().message(), "absolute"));

  files_["index.csv"] =
      "image,split,ih,iw,sh,sw,object,part,scene\n"
      "ade/a.jpg,train,8,8,4,4,ade/a_object.png,,\n"
      "ade/b.jpg,train,8,8,4,4,ade/../../../etc/b.png,,\n";
  StatusOr<BrodenDataset> escape = Open();
  ASSERT_FALSE(escape.ok());
  EXPECT_TRUE(Contains(escape.status().message(), "index.csv:3: column 'object'"));
  EXPECT_TRUE(Contains(escape.status().message(), "escapes the images/ directory"));

  files_["index.csv"] =
      "image,split,ih,iw,sh,sw,object,part,scene\n"
      "ade/a.jpg,train,8,8,4,4,,/etc/passwd.png,\n";
  StatusOr<BrodenDataset> absolute = Open();
  ASSERT_FALSE(absolute.ok());
  EXPECT_TRUE(Contains(absolute.status().message(), "index.csv:2: column 'part'"));
  EXPECT_TRUE(Contains(absolute.status().message(), "absolute"));

  files_["index.csv"] = "image,split,ih,iw,sh,sw,object,part,scene\n../x.jpg,train,8,8,4,4,,,\n";
  StatusOr<BrodenDataset> photo = Open();
  ASSERT_FALSE(photo.ok());
  EXPECT_TRUE(Contains(photo.status().message(), "index.csv:2: column 'image'"));
}

// ---- PNG decoding: a hand-made PNG writer that controls filters, chunks and pixel formats -----

uint32_t TestCrc32(const std::string& bytes) {
  uint32_t crc = 0xffffffffu;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::string BigEndian32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string Chunk(const std::string& type, const std::string& payload) {
  return BigEndian32(static_cast<uint32_t>(payload.size())) + type + payload +
         BigEndian32(TestCrc32(type + payload));
}

// A zlib stream made of stored (uncompressed) deflate blocks of at most `block` bytes.
std::string StoredZlib(const std::string& raw, size_t block) {
  std::string z = "\x78\x01";
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  size_t pos = 0;
  do {
    const size_t n = std::min(block, raw.size() - pos);
    const bool last = pos + n == raw.size();
    z += static_cast<char>(last ? 1 : 0);
    z += static_cast<char>(n & 0xff);
    z += static_cast<char>(n >> 8);
    z += static_cast<char>(~n & 0xff);
    z += static_cast<char>((~n >> 8) & 0xff);
    z += raw.substr(pos, n);
    pos += n;
  } while (pos < raw.size());
  return z + BigEndian32((b << 16) | a);
}

uint8_t TestPaeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return static_cast<uint8_t>(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

struct PngSpec {
  int bit_depth = 8, color_type = 2;  // 2 = RGB, 6 = RGBA, 0 = gray
  int idat_chunks = 1;                // the zlib stream is split over this many IDATs
  std::string extra_chunk;            // inserted after IHDR, e.g. a tRNS chunk
};

// Encodes `labels` (rows x cols) as a PNG; row r uses filter type r % 5, so every filter occurs.
std::string MakePng(const Layer& labels, int rows, int cols, const PngSpec& spec) {
  const int channels = spec.color_type == 2 ? 3 : spec.color_type == 6 ? 4 : 1;
  const size_t bpp = channels * spec.bit_depth / 8, row_bytes = cols * bpp;
  std::vector<std::vector<uint8_t>> pixels(rows, std::vector<uint8_t>(row_bytes));
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const uint16_t v = labels[r * cols + c];
      uint8_t* px = pixels[r].data() + c * bpp;
      if (channels == 1 && spec.bit_depth == 16) {
        px[0] = static_cast<uint8_t>(v >> 8);
        px[1] = static_cast<uint8_t>(v);
      } else if (channels == 1) {
        px[0] = static_cast<uint8_t>(v);
      } else {
        px[0] = static_cast<uint8_t>(v % 256);  // R
        px[1] = static_cast<uint8_t>(v / 256);  // G
        px[2] = static_cast<uint8_t>(v * 7);    // B: noise that must be ignored
        if (channels == 4) px[3] = static_cast<uint8_t>(255 - v);
      }
    }
  }
  std::string raw;
  const std::vector<uint8_t> zero(row_bytes, 0);
  for (int r = 0; r < rows; ++r) {
    const int filter = r % 5;
    const std::vector<uint8_t>& cur = pixels[r];
    const std::vector<uint8_t>& prev = r > 0 ? pixels[r - 1] : zero;
    raw += static_cast<char>(filter);
    for (size_t i = 0; i < row_bytes; ++i) {
      const int a = i >= bpp ? cur[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      const int predictor = filter == 0   ? 0
                            : filter == 1 ? a
                            : filter == 2 ? b
                            : filter == 3 ? (a + b) / 2
                                          : TestPaeth(a, b, c);
      raw += static_cast<char>(static_cast<uint8_t>(cur[i] - predictor));
    }
  }
  const std::string z = StoredZlib(raw, 1000);
  std::string png = "\x89PNG\r\n\x1a\n";
  png += Chunk("IHDR", BigEndian32(cols) + BigEndian32(rows) +
                           std::string{static_cast<char>(spec.bit_depth),
                                       static_cast<char>(spec.color_type), 0, 0, 0});
  png += spec.extra_chunk;
  png += Chunk("tEXt", std::string("Comment\0ancillary chunk, skipped", 32));
  const size_t piece = (z.size() + spec.idat_chunks - 1) / spec.idat_chunks;
  for (size_t pos = 0; pos < z.size(); pos += piece) png += Chunk("IDAT", z.substr(pos, piece));
  return png + Chunk("IEND", "");
}

Layer PseudoRandomLayer(int n, uint32_t seed, uint16_t max_value) {
  Layer layer(n);
  for (uint16_t& v : layer) {
    seed = seed * 1664525u + 1013904223u;
    v = static_cast<uint16_t>((seed >> 8) % (uint32_t{max_value} + 1));
  }
  return layer;
}

TEST_F(BrodenDatasetTest, FastPngPathHandlesEveryFilterFormatAndIdatSplit) {
  const int rows = 13, cols = 11;  // odd sizes, 13 rows = every filter type at least twice
  struct Case {
    PngSpec spec;
    uint16_t max_value;
  };
  const std::vector<Case> cases = {
      {{8, 2, 1, ""}, 65535}, {{8, 2, 4, ""}, 65535},  {{8, 6, 1, ""}, 65535},
      {{8, 0, 3, ""}, 255},   {{16, 0, 1, ""}, 65535},
  };
  int k = 0;
  for (const Case& c : cases) {
    const Layer layer = PseudoRandomLayer(rows * cols, 17 + k, c.max_value);
    const std::string name = "png/fast" + std::to_string(k++) + ".png";
    WriteText(name, MakePng(layer, rows, cols, c.spec));
    Layer out;
    bool fast = false;
    const Status status = DecodeLabelPng(root_ + "/" + name, rows, cols, &out, &fast);
    ASSERT_TRUE(status.ok()) << name << ": " << status.message();
    EXPECT_TRUE(fast) << name;
    EXPECT_EQ(out, layer) << name << " depth " << c.spec.bit_depth << " type " << c.spec.color_type
                          << " idat " << c.spec.idat_chunks;
    // OpenCV reads the same file to the same labels (the reference decoder).
    const cv::Mat mat = cv::imread(root_ + "/" + name, cv::IMREAD_UNCHANGED);
    ASSERT_FALSE(mat.empty()) << name;
    EXPECT_EQ(mat.rows, rows);
    const Status wrong_size = DecodeLabelPng(root_ + "/" + name, rows, cols + 1, &out);
    EXPECT_TRUE(Contains(wrong_size.message(), "size 13x11 (rows x cols) differs")) << name;
  }
}

TEST_F(BrodenDatasetTest, FastPngPathPaethTieGoesToTheAbovePixel) {
  // Row 4 uses the Paeth filter. For its second pixel left a=2, above b=8, above-left c=4:
  // p = 6, |p-b| = |p-c| = 2 < |p-a| = 4, a tie that the PNG spec resolves to b.
  const Layer layer = {1, 2, 3, 4, 5, 6, 4, 8, 2, 77};
  PngSpec gray;
  gray.color_type = 0;
  WriteText("png/paeth.png", MakePng(layer, 5, 2, gray));
  Layer out;
  bool fast = false;
  ASSERT_TRUE(DecodeLabelPng(root_ + "/png/paeth.png", 5, 2, &out, &fast).ok());
  EXPECT_TRUE(fast);
  EXPECT_EQ(out, layer);
}

TEST_F(BrodenDatasetTest, OpenCvWrittenNoisePngsDecodeExactly) {
  // libpng's adaptive filtering picks Sub/Up/Average/Paeth on noisy rows; compressed IDAT.
  int k = 0;
  for (const auto& [rows, cols] : std::vector<std::pair<int, int>>{{112, 112}, {7, 3}, {1, 1}}) {
    for (int channels : {3, 4}) {
      const Layer layer = PseudoRandomLayer(rows * cols, 99 + k, 65535);
      const std::string path = root_ + "/noise" + std::to_string(k++) + ".png";
      WriteLabelPng(path, rows, cols, layer, channels);
      Layer out;
      bool fast = false;
      ASSERT_TRUE(DecodeLabelPng(path, rows, cols, &out, &fast).ok()) << path;
      EXPECT_TRUE(fast) << path;
      EXPECT_EQ(out, layer) << path;
    }
  }
}

TEST_F(BrodenDatasetTest, PngWithTransparencyChunkFallsBackToOpenCv) {
  // A tRNS chunk makes OpenCV add an alpha channel; labels must be the same either way.
  const Layer layer = PseudoRandomLayer(6 * 5, 5, 65535);
  PngSpec spec;
  spec.extra_chunk = Chunk("tRNS", std::string("\0\1\0\2\0\3", 6));
  WriteText("png/trns.png", MakePng(layer, 6, 5, spec));
  Layer out;
  bool fast = true;
  const Status status = DecodeLabelPng(root_ + "/png/trns.png", 6, 5, &out, &fast);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_FALSE(fast);
  EXPECT_EQ(out, layer);
}

TEST_F(BrodenDatasetTest, DamagedPngIsDataLossNotGarbage) {
  const Layer layer = PseudoRandomLayer(8 * 8, 3, 65535);
  const std::string good = MakePng(layer, 8, 8, PngSpec());
  // One flipped byte inside the IDAT payload: the chunk CRC no longer matches.
  std::string flipped = good;
  const size_t idat = flipped.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  flipped[idat + 40] = static_cast<char>(flipped[idat + 40] ^ 0x10);
  WriteText("png/flipped.png", flipped);
  Layer out;
  const Status bad_crc = DecodeLabelPng(root_ + "/png/flipped.png", 8, 8, &out);
  EXPECT_EQ(bad_crc.code(), StatusCode::kDataLoss) << bad_crc.message();
  EXPECT_TRUE(Contains(bad_crc.message(), "flipped.png"));

  WriteText("png/truncated.png", good.substr(0, good.size() / 2));
  const Status truncated = DecodeLabelPng(root_ + "/png/truncated.png", 8, 8, &out);
  EXPECT_EQ(truncated.code(), StatusCode::kDataLoss) << truncated.message();

  WriteText("png/empty.png", "");
  EXPECT_EQ(DecodeLabelPng(root_ + "/png/empty.png", 8, 8, &out).code(), StatusCode::kDataLoss);

  fs::create_directories(root_ + "/png/dir.png");
  EXPECT_FALSE(DecodeLabelPng(root_ + "/png/dir.png", 8, 8, &out).ok());
}

// Malformed CSV inputs: Open() fails with a message naming the file and the 1-based line.
struct MalformedCase {
  const char* test_name;
  const char* file;  // file to replace; "-" removes c_part.csv
  std::string content;
  std::vector<std::string> expected;  // substrings of the message
};

// Keeps the byte dump of the struct out of ctest's test names.
void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.test_name; }

class MalformedCsvTest : public BrodenDatasetTest,
                         public ::testing::WithParamInterface<MalformedCase> {};

TEST_P(MalformedCsvTest, OpenNamesFileAndLine) {
  const MalformedCase& param = GetParam();
  if (std::string(param.file) == "-") {
    files_.erase("c_part.csv");
  } else {
    files_[param.file] = param.content;
  }
  StatusOr<BrodenDataset> ds = Open();
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().message().find('\n'), std::string::npos) << "not one line";
  for (const std::string& part : param.expected) EXPECT_TRUE(Contains(ds.status().message(), part));
}

const std::string kIndexHeader = "image,split,ih,iw,sh,sw,object,part,scene\n";
const std::string kGoodRow = "ade/a.jpg,train,8,8,4,4,ade/a_object.png,,\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedCsvTest,
    ::testing::Values(
        MalformedCase{"IndexMissingColumn",
                      "index.csv",
                      "image,split,ih,iw,sw,object,part,scene\n",
                      {"index.csv:1: missing column 'sh'", "columns are: image, split"}},
        MalformedCase{"IndexMissingCategoryColumn",
                      "index.csv",
                      "image,split,ih,iw,sh,sw,object,scene\n",
                      {"index.csv:1: missing column 'part'"}},
        MalformedCase{"IndexNonNumericSize",
                      "index.csv",
                      kIndexHeader + kGoodRow + "ade/b.jpg,train,8,8,abc,4,,,\n",
                      {"index.csv:3: column 'sh': 'abc' is not an integer"}},
        MalformedCase{"IndexZeroSize",
                      "index.csv",
                      kIndexHeader + "ade/b.jpg,train,8,0,4,4,,,\n",
                      {"index.csv:2: column 'iw': 0 is out of range"}},
        MalformedCase{"IndexScalarLabelWithoutRow",
                      "index.csv",
                      kIndexHeader + kGoodRow + kGoodRow + "ade/b.jpg,train,8,8,4,4,,,6;99\n",
                      {"index.csv:4: column 'scene': label 99 has no row in label.csv"}},
        MalformedCase{"IndexScalarLabelZero",
                      "index.csv",
                      kIndexHeader + "ade/b.jpg,train,8,8,4,4,,,0\n",
                      {"index.csv:2: column 'scene': label 0 has no row"}},
        MalformedCase{"IndexEmptyItem",
                      "index.csv",
                      kIndexHeader + "ade/b.jpg,train,8,8,4,4,a.png;;b.png,,\n",
                      {"index.csv:2: column 'object': empty item"}},
        MalformedCase{"IndexWrongFieldCount",
                      "index.csv",
                      kIndexHeader + kGoodRow + "ade/b.jpg,train,8,8,4,4,,\n",
                      {"index.csv:3: expected 9 fields"}},
        MalformedCase{"LabelMissingColumn",
                      "label.csv",
                      "number,name,category,frequency,syns\n",
                      {"label.csv:1: missing column 'coverage'"}},
        MalformedCase{"LabelBadNumber",
                      "label.csv",
                      "number,name,category,frequency,coverage,syns\n1,a,,1,1,\nx2,b,,1,1,\n",
                      {"label.csv:3: column 'number': 'x2' is not an integer"}},
        MalformedCase{"LabelDuplicateNumber",
                      "label.csv",
                      "number,name,category,frequency,coverage,syns\n1,a,,1,1,\n1,b,,1,1,\n",
                      {"label.csv:3: column 'number': duplicate label number 1"}},
        MalformedCase{"LabelBadCoverage",
                      "label.csv",
                      "number,name,category,frequency,coverage,syns\n1,a,,1,lots,\n",
                      {"label.csv:2: column 'coverage': 'lots' is not a finite number"}},
        MalformedCase{"LabelNumberAboveRgCoding",
                      "label.csv",
                      "number,name,category,frequency,coverage,syns\n65536,a,,1,1,\n",
                      {"label.csv:2: column 'number': 65536 is out of range"}},
        MalformedCase{"CategoryMissingColumn",
                      "category.csv",
                      "name,first,last,frequency\n",
                      {"category.csv:1: missing column 'count'"}},
        MalformedCase{"CategoryBadName",
                      "category.csv",
                      "name,first,last,count,frequency\nobject,1,4,4,5\n../x,1,1,1,1\n",
                      {"category.csv:3: column 'name'"}},
        MalformedCase{"CategoryNonNumeric",
                      "category.csv",
                      "name,first,last,count,frequency\nobject,1,4,4,5\npart,1,one,1,1\n",
                      {"category.csv:3: column 'last': 'one' is not an integer"}},
        MalformedCase{"CategoryFileMissingColumnOfSelected",
                      "c_object.csv",
                      "code,name,frequency,coverage\n",
                      {"c_object.csv:1: missing column 'number'"}},
        MalformedCase{"CategoryFileUnknownLabel",
                      "c_part.csv",
                      "code,number,name,frequency,coverage\n1,3,wheel,1,0.2\n2,42,x,1,0.1\n",
                      {"c_part.csv:3: column 'number': label 42 has no row in label.csv"}},
        MalformedCase{"CategoryFileCodeZero",
                      "c_part.csv",
                      "code,number,name,frequency,coverage\n0,3,wheel,1,0.2\n",
                      {"c_part.csv:2: column 'code': 0 is out of range"}},
        MalformedCase{"CategoryFileMissing", "-", "", {"c_part.csv: cannot open file"}},
        MalformedCase{"UnterminatedQuote",
                      "label.csv",
                      "number,name,category,frequency,coverage,syns\n1,\"a,,1,1,\n",
                      {"label.csv:2: column 3: quoted field is never closed"}}),
    [](const ::testing::TestParamInfo<MalformedCase>& info) { return info.param.test_name; });

// Errors found only when the PNGs are decoded: they name the PNG and the index.csv line.
TEST_F(BrodenDatasetTest, PixelLabelWithoutRowNamesPngAndIndexLine) {
  pngs_["ade/a_part_2.png"] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 300};
  StatusOr<BrodenDataset> ds = Open();
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  StatusOr<ImageLabels> a = ds->ReadLabels(0);
  ASSERT_FALSE(a.ok());
  const std::string& m = a.status().message();
  EXPECT_TRUE(Contains(m, "images/ade/a_part_2.png: pixel (row 3, col 3) has label 300"));
  EXPECT_TRUE(Contains(m, "no row in label.csv"));
  EXPECT_TRUE(Contains(m, "index.csv:2, column 'part'"));
  EXPECT_TRUE(ds->ReadLabels(1).ok());  // other images unaffected
}

TEST_F(BrodenDatasetTest, PixelLabelInGapOfLabelNumbersIsAnError) {
  // label.csv without 4 (car): a gap below the maximum; a_object.png uses 4.
  files_["label.csv"] =
      "number,name,category,frequency,coverage,syns\n1,sky,,1,1,\n2,tree,,1,1,\n3,wheel,,1,1,\n"
      "5,door,,1,1,\n6,street-s,,1,1,\n7,beach,,1,1,\n";
  files_["c_object.csv"] = "code,number,name,frequency,coverage\n1,1,sky,2,0.5\n";
  StatusOr<BrodenDataset> ds = Open();
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  EXPECT_EQ(ds->num_labels(), 8);
  EXPECT_FALSE(ds->labels()[4].defined);
  StatusOr<ImageLabels> a = ds->ReadLabels(0);
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(Contains(a.status().message(), "a_object.png: pixel (row 2, col 1) has label 4"));
  EXPECT_TRUE(Contains(a.status().message(), "index.csv:2"));
}

TEST_F(BrodenDatasetTest, PngSizeMismatchNamesPngAndIndexLine) {
  StatusOr<BrodenDataset> ds = Open();
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  WritePng("ade/b_object.png", Layer(6, 1), 2, 3);
  StatusOr<ImageLabels> b = ds->ReadLabels(1);
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(Contains(b.status().message(), "b_object.png: size 2x3"));
  EXPECT_TRUE(Contains(b.status().message(), "sh x sw = 4x4"));
  EXPECT_TRUE(Contains(b.status().message(), "index.csv:3"));
}

TEST_F(BrodenDatasetTest, MissingOrUnreadablePngNamesPngAndIndexLine) {
  StatusOr<BrodenDataset> ds = Open();
  ASSERT_TRUE(ds.ok()) << ds.status().message();
  fs::remove(root_ + "/images/ade/a_part_1.png");
  StatusOr<ImageLabels> missing = ds->ReadLabels(0);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(missing.status().message(), "images/ade/a_part_1.png: no such file"));
  EXPECT_TRUE(Contains(missing.status().message(), "index.csv:2, column 'part'"));

  WriteText("images/ade/b_object.png", "not a png at all");
  StatusOr<ImageLabels> junk = ds->ReadLabels(1);
  ASSERT_FALSE(junk.ok());
  EXPECT_TRUE(Contains(junk.status().message(), "b_object.png: cannot read or decode"));
  EXPECT_TRUE(Contains(junk.status().message(), "index.csv:3"));
}

TEST_F(BrodenDatasetTest, MissingMetadataFileNamesIt) {
  WriteDataset();
  fs::remove(root_ + "/label.csv");
  StatusOr<BrodenDataset> ds = BrodenDataset::Open(root_);
  ASSERT_FALSE(ds.ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(ds.status().message(), root_ + "/label.csv"));
}

}  // namespace
}  // namespace nd
