// What decode sends extract (issue 17): a batch whose images all have the input size already goes
// as their 8-bit RGB (ImageBatch::kRgb8, a quarter of the float32 bytes) and extract normalises it
// (common/preprocess/normalize.h); a batch with an image to resize goes normalised in float32.
// Either way the network sees the same floats as DecodeAndPreprocess gives, to the bit.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <vector>

#include "common/base/status.h"
#include "common/broden/broden_dataset.h"
#include "common/preprocess/normalize.h"
#include "common/preprocess/preprocess.h"
#include "common/runtime/wire.h"
#include "stages/decode/decode_stage.h"
#include "tests/testing/files.h"
#include "tests/testing/score_testing.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
using ::nd::testing::ReadAll;
using testing_score::MakeTempDir;
using testing_score::SceneOnlyBroden;
using testing_score::WriteTestBroden;

// The SPEC's torchvision normalisation written out with OpenCV's float conversion, as
// PreprocessRgb computed it before normalize.h existed: ((float)v − 255·m) · 1/(255·s).
std::vector<float> ReferenceTorchvision(const std::vector<uint8_t>& rgb, int size) {
  const float m[3] = {0.485f, 0.456f, 0.406f}, s[3] = {0.229f, 0.224f, 0.225f};
  cv::Mat src(size, size, CV_8UC3, const_cast<uint8_t*>(rgb.data())), f;
  src.convertTo(f, CV_32FC3);
  std::vector<float> out(static_cast<size_t>(3) * size * size);
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < 3; ++c)
        out[(static_cast<size_t>(c) * size + y) * size + x] =
            (f.ptr<float>(y)[3 * x + c] - m[c] * 255.0f) * (1.0f / (s[c] * 255.0f));
  return out;
}

class DecodePixelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("decode_pixels");
    ASSERT_FALSE(dir_.empty());
    ASSERT_TRUE(WriteTestBroden(SceneOnlyBroden(3), dir_));
    // Lossless photos (PNG bytes; the decoder goes by content): two 8x8, one 6x6 to resize.
    for (int i = 0; i < 3; ++i) {
      const int side = i == 2 ? 6 : 8;
      cv::Mat bgr(side, side, CV_8UC3);
      for (int y = 0; y < side; ++y)
        for (int x = 0; x < side; ++x)
          bgr.at<cv::Vec3b>(y, x) =
              cv::Vec3b(static_cast<uint8_t>(10 * x + i), static_cast<uint8_t>(20 * y),
                        static_cast<uint8_t>(255 - 7 * x - 3 * y));
      std::vector<uint8_t> png;
      ASSERT_TRUE(cv::imencode(".png", bgr, png));
      std::ofstream(Photo(i), std::ios::binary)
          .write(reinterpret_cast<const char*>(png.data()),
                 static_cast<std::streamsize>(png.size()));
    }
    auto ds = BrodenDataset::Open(dir_);
    ND_ASSERT_OK(ds);
    dataset_ = std::make_unique<BrodenDataset>(std::move(ds).value());
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Photo(int i) const { return dir_ + "/images/img" + std::to_string(i) + ".jpg"; }
  // Photo i's RGB bytes as written: B = 10x + i, G = 20y, R = 255 - 7x - 3y.
  static std::vector<uint8_t> Rgb(int i, int side) {
    std::vector<uint8_t> rgb;
    for (int y = 0; y < side; ++y)
      for (int x = 0; x < side; ++x) {
        rgb.push_back(static_cast<uint8_t>(255 - 7 * x - 3 * y));
        rgb.push_back(static_cast<uint8_t>(20 * y));
        rgb.push_back(static_cast<uint8_t>(10 * x + i));
      }
    return rgb;
  }
  std::vector<float> Preprocessed(int i) const {
    std::vector<float> out(3 * 8 * 8);
    EXPECT_TRUE(DecodeAndPreprocess(ReadAll(Photo(i)), 8, "torchvision", out.data()).ok());
    return out;
  }

  std::string dir_;
  std::unique_ptr<BrodenDataset> dataset_;
};

TEST_F(DecodePixelsTest, ImagesAtTheInputSizeGoAsTheirRgbBytesAndNormaliseToTheSameFloats) {
  DecodeOptions o;
  o.input_size = 8;
  o.batch_size = 2;
  DecodeStage stage(*dataset_, o, nullptr);
  auto batch = stage.Next();
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->images.size(), 2u);
  EXPECT_EQ(batch->pixel_format, ImageBatch::kRgb8);
  ASSERT_EQ(batch->tensor.size(), 2u * 8 * 8 * 3);
  ND_ASSERT_OK_AND_ASSIGN(const Normalization n, NormalizationFor("torchvision"));
  for (int i = 0; i < 2; ++i) {
    const std::vector<uint8_t> sent(batch->tensor.begin() + i * 192,
                                    batch->tensor.begin() + (i + 1) * 192);
    EXPECT_EQ(sent, Rgb(i, 8)) << "image " << i;
    std::vector<float> normalised(192);
    NormalizeRgb8(sent.data(), 64, n, normalised.data());
    const std::vector<float> reference = ReferenceTorchvision(Rgb(i, 8), 8);
    EXPECT_EQ(std::memcmp(normalised.data(), reference.data(), 192 * sizeof(float)), 0) << i;
    const std::vector<float> decoded = Preprocessed(i);
    EXPECT_EQ(std::memcmp(normalised.data(), decoded.data(), 192 * sizeof(float)), 0) << i;
  }
  // The third image is 6x6: its batch goes normalised in float32, resized.
  auto second = stage.Next();
  ASSERT_TRUE(second.has_value());
  ASSERT_EQ(second->images.size(), 1u);
  EXPECT_EQ(second->pixel_format, ImageBatch::kNormalizedFloat32);
  ASSERT_EQ(second->tensor.size(), 192 * sizeof(float));
  const std::vector<float> resized = Preprocessed(2);
  EXPECT_EQ(std::memcmp(second->tensor.data(), resized.data(), 192 * sizeof(float)), 0);
}

TEST_F(DecodePixelsTest, ABatchWithAnImageToResizeGoesAllInNormalisedFloats) {
  DecodeOptions o;
  o.input_size = 8;
  o.batch_size = 3;
  DecodeStage stage(*dataset_, o, nullptr);
  auto batch = stage.Next();
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->images.size(), 3u);
  EXPECT_EQ(batch->pixel_format, ImageBatch::kNormalizedFloat32);
  ASSERT_EQ(batch->tensor.size(), 3u * 192 * sizeof(float));
  for (int i = 0; i < 3; ++i) {
    const std::vector<float> expected = Preprocessed(i);
    EXPECT_EQ(std::memcmp(batch->tensor.data() + i * 192 * sizeof(float), expected.data(),
                          192 * sizeof(float)),
              0)
        << "image " << i;
  }
  // The 8x8 ones equal the SPEC formula (no resize involved).
  const std::vector<float> reference = ReferenceTorchvision(Rgb(0, 8), 8);
  EXPECT_EQ(std::memcmp(batch->tensor.data(), reference.data(), 192 * sizeof(float)), 0);
}

TEST(PixelFormatWireTest, Rgb8BatchesRoundTripAndTheirSizeIsChecked) {
  ImageBatch b;
  b.images = {{0, std::string(64, 'a')}, {1, std::string(64, 'b')}};
  b.height = 2;
  b.width = 3;
  b.pixel_format = ImageBatch::kRgb8;
  b.tensor.assign(2 * 2 * 3 * 3, '\x07');
  ImageBatch out;
  ND_ASSERT_OK(Decode(Encode(b), &out));
  EXPECT_EQ(out.pixel_format, ImageBatch::kRgb8);
  EXPECT_EQ(out.tensor, b.tensor);
  b.tensor.resize(2 * 2 * 3 * 3 * sizeof(float));  // float32 bytes under the RGB8 format
  Status wrong = Decode(Encode(b), &out);
  EXPECT_EQ(wrong.code(), StatusCode::kDataLoss);
  EXPECT_NE(wrong.message().find("expected 36"), std::string::npos) << wrong.message();
  b.pixel_format = 7;
  Status unknown = Decode(Encode(b), &out);
  EXPECT_NE(unknown.message().find("unknown pixel format 7"), std::string::npos)
      << unknown.message();
}

}  // namespace
}  // namespace nd
