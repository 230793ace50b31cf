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

#include "tests/testing/broden_fixture.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
using namespace broden_testing;  // NOLINT(build/namespaces): the fixture and its data

TEST_F(BrodenDatasetTest, RoundTripOfThreeImageDataset) {
  StatusOr<BrodenDataset> ds = Open();
  ND_ASSERT_OK(ds);

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
  ND_ASSERT_OK(a);
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
  ND_ASSERT_OK(c);
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
  ND_ASSERT_OK(ds);
  EXPECT_EQ(ds->num_labels(), 779);
  StatusOr<ImageLabels> b = ds->ReadLabels(1);
  ND_ASSERT_OK(b);
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
  ND_ASSERT_OK(DecodeLabelPng(dir + "/g16.png", 1, 3, &out));
  EXPECT_EQ(out, (Layer{778, 0, 60000}));
  ND_ASSERT_OK(DecodeLabelPng(dir + "/g8.png", 1, 3, &out));
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
  ND_ASSERT_OK(ds);
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
  ND_ASSERT_OK(swapped);
  EXPECT_EQ(swapped->categories()[1].name, "object");
  EXPECT_EQ(swapped->PrimaryCategory(1), 1);  // now object, the later one
  EXPECT_EQ(swapped->PrimaryCategory(4), 2);
}

TEST_F(BrodenDatasetTest, ScalarLabelsCoverTheWholeImage) {
  StatusOr<BrodenDataset> ds = Open();
  ND_ASSERT_OK(ds);
  StatusOr<ImageLabels> b = ds->ReadLabels(1);
  ND_ASSERT_OK(b);
  EXPECT_EQ(b->scalar_labels, (std::vector<int>{6, 7}));
  EXPECT_EQ(b->scalar_category, (std::vector<int>{2, 2}));
  ASSERT_EQ(b->layers.size(), 1u);
  EXPECT_EQ(b->layers[0], kBObject);
  EXPECT_EQ(b->layer_category, std::vector<int>{0});
}

TEST_F(BrodenDatasetTest, SeveralLayersInOneCategoryKeepTheirOrderAndOverlap) {
  // Pixel (2,1) carries wheel (3) in layer 1 and door (5) in layer 2 at the same time.
  StatusOr<BrodenDataset> ds = Open();
  ND_ASSERT_OK(ds);
  StatusOr<ImageLabels> a = ds->ReadLabels(0);
  ND_ASSERT_OK(a);
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
  ND_ASSERT_OK(ds);
  EXPECT_TRUE(ds->categories()[0].selected);
  EXPECT_FALSE(ds->categories()[1].selected);
  EXPECT_TRUE(ds->categories()[2].selected);
  // wheel: object 0.1 is now its only candidate; door is only in part -> -1.
  EXPECT_EQ(ds->PrimaryCategory(3), 0);
  EXPECT_EQ(ds->PrimaryCategory(5), -1);
  EXPECT_LT(ds->labels()[5].coverage[1], 0);
  EXPECT_TRUE(ds->images()[0].pixel_layers[1].empty());
  StatusOr<ImageLabels> a = ds->ReadLabels(0);
  ND_ASSERT_OK(a);
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
  ND_ASSERT_OK(ok);
  StatusOr<std::string> inside = ok->ResolveImagePath("ade/./x/../a_object.png");
  ND_ASSERT_OK(inside);
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
  ND_ASSERT_OK(ds);
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
  ND_ASSERT_OK(ds);
  EXPECT_EQ(ds->num_labels(), 8);
  EXPECT_FALSE(ds->labels()[4].defined);
  StatusOr<ImageLabels> a = ds->ReadLabels(0);
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(Contains(a.status().message(), "a_object.png: pixel (row 2, col 1) has label 4"));
  EXPECT_TRUE(Contains(a.status().message(), "index.csv:2"));
}

TEST_F(BrodenDatasetTest, PngSizeMismatchNamesPngAndIndexLine) {
  StatusOr<BrodenDataset> ds = Open();
  ND_ASSERT_OK(ds);
  WritePng("ade/b_object.png", Layer(6, 1), 2, 3);
  StatusOr<ImageLabels> b = ds->ReadLabels(1);
  ASSERT_FALSE(b.ok());
  EXPECT_TRUE(Contains(b.status().message(), "b_object.png: size 2x3"));
  EXPECT_TRUE(Contains(b.status().message(), "sh x sw = 4x4"));
  EXPECT_TRUE(Contains(b.status().message(), "index.csv:3"));
}

TEST_F(BrodenDatasetTest, MissingOrUnreadablePngNamesPngAndIndexLine) {
  StatusOr<BrodenDataset> ds = Open();
  ND_ASSERT_OK(ds);
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
