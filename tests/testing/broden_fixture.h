// The hand-written Broden dataset of the reader's tests (broden_dataset_test.cc,
// broden_png_test.cc): three images with 4x4 segmentations, categories object, part and scene,
// and column orders that differ from the original release (everything is read by header name).
// BrodenDatasetTest writes it into a fresh temporary directory per test.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "common/broden/broden_dataset.h"

namespace nd::broden_testing {

namespace fs = std::filesystem;
using Layer = std::vector<uint16_t>;

inline ::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
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
inline void WriteLabelPng(const std::string& path, int rows, int cols, const Layer& labels,
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

}  // namespace nd::broden_testing
