// The Broden reader's PNG decoding (common/broden/broden_dataset.h, DecodeLabelPng): a hand-made
// PNG writer controls filters, chunks and pixel formats; the fast path must equal OpenCV exactly.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>
#include <vector>

#include "common/broden/broden_dataset.h"
#include "tests/testing/broden_fixture.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
using namespace broden_testing;  // NOLINT(build/namespaces): the fixture and its data

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
  ND_ASSERT_OK(DecodeLabelPng(root_ + "/png/paeth.png", 5, 2, &out, &fast));
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
  ND_ASSERT_OK(status);
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

}  // namespace
}  // namespace nd
