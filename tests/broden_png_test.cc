// The Broden reader's PNG decoding (common/broden/broden_dataset.h, DecodeLabelPng): a hand-made
// PNG writer controls filters, chunks and pixel formats; the fast path must equal OpenCV exactly,
// and so must the libpng fallback (palette, bit depths below 8, interlacing, tRNS, gray+alpha),
// whose expected labels are written out by hand below and checked against OpenCV as well.
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

TEST_F(BrodenDatasetTest, PngWithTransparencyChunkFallsBackToLibpng) {
  // A tRNS chunk makes the fallback (as OpenCV) add an alpha channel; labels are the same.
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

// ---- The libpng fallback ----------------------------------------------------------------------

// A PNG of any format, written sample by sample: `samples` holds rows*cols*(samples per pixel)
// values, each below 2^bit_depth (palette indices for color type 3). Rows use filter 0; with
// `interlace` the pixels are split into the seven Adam7 passes (PNG spec, section 8.2).
struct RawPng {
  int rows = 0, cols = 0, bit_depth = 8, color_type = 0;
  bool interlace = false;
  std::vector<uint16_t> samples;
  std::string chunks_before_idat;  // PLTE, tRNS, gAMA ... as Chunk() strings
};

int SamplesPerPixel(int color_type) {
  switch (color_type) {
    case 2:
      return 3;
    case 4:
      return 2;
    case 6:
      return 4;
    default:
      return 1;  // gray, palette
  }
}

// One scanline (without its filter byte) of the pixels at `pixels` (indices into rows*cols).
std::string PackScanline(const RawPng& png, const std::vector<int>& pixels) {
  const int spp = SamplesPerPixel(png.color_type);
  std::string out;
  uint32_t bits = 0;
  int nbits = 0;
  for (int p : pixels) {
    for (int k = 0; k < spp; ++k) {
      const uint16_t v = png.samples[static_cast<size_t>(p) * spp + k];
      if (png.bit_depth == 16) {
        out += static_cast<char>(v >> 8);
        out += static_cast<char>(v & 0xff);
        continue;
      }
      bits = (bits << png.bit_depth) | v;  // most significant bits first
      nbits += png.bit_depth;
      if (nbits == 8) {
        out += static_cast<char>(bits);
        bits = 0;
        nbits = 0;
      }
    }
  }
  if (nbits > 0) out += static_cast<char>(bits << (8 - nbits));  // pad the last byte with zeros
  return out;
}

std::string EncodeRawPng(const RawPng& png) {
  std::string raw;
  struct Pass {
    int x0, y0, dx, dy;
  };
  const std::vector<Pass> passes =
      png.interlace ? std::vector<Pass>{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                        {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}
                    : std::vector<Pass>{{0, 0, 1, 1}};
  for (const Pass& pass : passes) {
    for (int y = pass.y0; y < png.rows; y += pass.dy) {
      std::vector<int> pixels;
      for (int x = pass.x0; x < png.cols; x += pass.dx) pixels.push_back(y * png.cols + x);
      if (pixels.empty()) continue;  // an empty pass has no scanlines at all
      raw += '\0';
      raw += PackScanline(png, pixels);
    }
  }
  std::string out = "\x89PNG\r\n\x1a\n";
  out += Chunk("IHDR",
               BigEndian32(png.cols) + BigEndian32(png.rows) +
                   std::string{static_cast<char>(png.bit_depth), static_cast<char>(png.color_type),
                               0, 0, static_cast<char>(png.interlace ? 1 : 0)});
  out += png.chunks_before_idat;
  out += Chunk("IDAT", StoredZlib(raw, 100));
  return out + Chunk("IEND", "");
}

// What OpenCV (cv::imread with IMREAD_UNCHANGED, the reader's decoder before libpng) gives the
// file, mapped as DecodeLabelPng documents; empty when OpenCV does not decode it to a supported
// format.
Layer OpenCvLabels(const std::string& path) {
  const cv::Mat mat = cv::imread(path, cv::IMREAD_UNCHANGED);
  Layer labels;
  for (int r = 0; r < mat.rows; ++r) {
    for (int c = 0; c < mat.cols; ++c) {
      if (mat.depth() == CV_8U && (mat.channels() == 3 || mat.channels() == 4)) {
        const uint8_t* px = mat.ptr<uint8_t>(r) + c * mat.channels();  // B, G, R(, A)
        labels.push_back(static_cast<uint16_t>(px[2] + 256 * px[1]));
      } else if (mat.depth() == CV_8U && mat.channels() == 1) {
        labels.push_back(mat.ptr<uint8_t>(r)[c]);
      } else if (mat.depth() == CV_16U && mat.channels() == 1) {
        labels.push_back(mat.ptr<uint16_t>(r)[c]);
      } else {
        return {};
      }
    }
  }
  return labels;
}

// Palette: 0 (10,0,99) -> 10, 1 (44,3,0) -> 44 + 3*256 = 812, 2 (0,1,7) -> 256,
// 3 (255,255,1) -> 65535.
const std::string kPalette = Chunk("PLTE", std::string("\x0a\x00\x63"
                                                       "\x2c\x03\x00"
                                                       "\x00\x01\x07"
                                                       "\xff\xff\x01",
                                                       12));

TEST_F(BrodenDatasetTest, LibpngFallbackDecodesEveryFormatAsOpenCvDid) {
  struct Case {
    std::string name;
    RawPng png;
    Layer expected;  // by hand, from the samples
  };
  std::vector<Case> cases;
  // 2-bit palette, 2x3 (a row is 6 bits: padded), without and with tRNS (alpha for entries 0, 1).
  const std::vector<uint16_t> indices = {0, 1, 2, 3, 2, 1};
  const Layer from_palette = {10, 812, 256, 65535, 256, 812};
  cases.push_back({"palette2", {2, 3, 2, 3, false, indices, kPalette}, from_palette});
  cases.push_back(
      {"palette2_trns",
       {2, 3, 2, 3, false, indices, kPalette + Chunk("tRNS", std::string("\x00\x80", 2))},
       from_palette});
  // 8-bit palette, interlaced 3x5 (passes 1, 2, 4, 5, 6, 7 non-empty).
  const std::vector<uint16_t> indices15 = {3, 0, 1, 2, 3, 2, 2, 1, 0, 0, 1, 3, 3, 3, 2};
  cases.push_back(
      {"palette8_interlaced",
       {3, 5, 8, 3, true, indices15, kPalette},
       {65535, 10, 812, 256, 65535, 256, 256, 812, 10, 10, 812, 65535, 65535, 65535, 256}});
  // Gray below 8 bits is scaled to 8 bits: 1-bit x255, 2-bit x85, 4-bit x17.
  cases.push_back({"gray1", {1, 3, 1, 0, false, {1, 0, 1}, ""}, {255, 0, 255}});
  cases.push_back({"gray2",
                   {2, 5, 2, 0, false, {0, 1, 2, 3, 1, 3, 3, 0, 2, 1}, ""},
                   {0, 85, 170, 255, 85, 255, 255, 0, 170, 85}});
  cases.push_back({"gray4", {1, 3, 4, 0, false, {15, 7, 0}, ""}, {255, 119, 0}});
  // A gray tRNS is ignored (one channel stays one channel); 16 bits stay 16 bits.
  cases.push_back(
      {"gray16_trns",
       {2, 2, 16, 0, false, {300, 65535, 0, 4097}, Chunk("tRNS", BigEndian32(300).substr(2))},
       {300, 65535, 0, 4097}});
  // Gray + alpha becomes gray, gray, gray, alpha: label gray + 256 * gray.
  cases.push_back(
      {"gray_alpha8", {1, 3, 8, 4, false, {1, 255, 2, 0, 200, 9}, ""}, {257, 514, 51400}});
  {
    // Interlaced 9x10 (all seven passes non-empty): 8-bit RGB with a gAMA chunk (gamma 0.5, which
    // must not be applied) and 16-bit gray.
    RawPng rgb{9, 10, 8, 2, true, {}, Chunk("gAMA", BigEndian32(50000))};
    RawPng gray{9, 10, 16, 0, true, {}, ""};
    Layer rgb_labels, gray_labels;
    for (int r = 0; r < 9; ++r) {
      for (int c = 0; c < 10; ++c) {
        const int red = (r * 10 + c) * 2, green = r + 2 * c, blue = r * c;
        rgb.samples.insert(rgb.samples.end(),
                           {static_cast<uint16_t>(red), static_cast<uint16_t>(green),
                            static_cast<uint16_t>(blue)});
        rgb_labels.push_back(static_cast<uint16_t>(red + 256 * green));
        gray.samples.push_back(static_cast<uint16_t>(300 + 1000 * r + 7 * c));
        gray_labels.push_back(static_cast<uint16_t>(300 + 1000 * r + 7 * c));
      }
    }
    cases.push_back({"rgb8_interlaced_gama", rgb, rgb_labels});
    cases.push_back({"gray16_interlaced", gray, gray_labels});
  }
  for (const Case& c : cases) {
    const std::string path = root_ + "/png/" + c.name + ".png";
    WriteText("png/" + c.name + ".png", EncodeRawPng(c.png));
    Layer out;
    bool fast = true;
    const Status status = DecodeLabelPng(path, c.png.rows, c.png.cols, &out, &fast);
    ASSERT_TRUE(status.ok()) << c.name << ": " << status.message();
    EXPECT_FALSE(fast) << c.name;
    EXPECT_EQ(out, c.expected) << c.name;
    EXPECT_EQ(OpenCvLabels(path), c.expected) << c.name << " (OpenCV, the former decoder)";
  }
}

TEST_F(BrodenDatasetTest, LibpngFallbackRefusesSixteenBitColour) {
  // OpenCV gave 16-bit RGBA as four 16-bit channels, which the reader refused.
  RawPng rgba{1, 2, 16, 6, false, {1, 2, 3, 4, 5, 6, 7, 8}, ""};
  WriteText("png/rgba16.png", EncodeRawPng(rgba));
  Layer out;
  const Status status = DecodeLabelPng(root_ + "/png/rgba16.png", 1, 2, &out);
  EXPECT_EQ(status.code(), StatusCode::kInvalidArgument) << status.message();
  EXPECT_TRUE(
      Contains(status.message(), "rgba16.png: unsupported pixel format (16-bit, 4 channels)"));
}

TEST_F(BrodenDatasetTest, DamagedFallbackPngIsOneLineDataLossNamingTheFile) {
  const RawPng palette{4, 4, 8, 3, true, std::vector<uint16_t>(16, 1), kPalette};
  const std::string good = EncodeRawPng(palette);
  Layer out;
  WriteText("png/good.png", good);
  ND_ASSERT_OK(DecodeLabelPng(root_ + "/png/good.png", 4, 4, &out));
  EXPECT_EQ(out, Layer(16, 812));

  std::string bad_plte = good;  // a critical chunk's CRC no longer matches
  bad_plte[bad_plte.find("PLTE") + 5] ^= 0x01;
  RawPng no_plte = palette;
  no_plte.chunks_before_idat.clear();
  const std::vector<std::pair<std::string, std::string>> damaged = {
      {"truncated", good.substr(0, good.size() - 30)},  // inside IDAT
      {"no_iend", good.substr(0, good.size() - 12)},
      {"bad_plte_crc", bad_plte},
      {"no_plte", EncodeRawPng(no_plte)},
      {"only_signature", good.substr(0, 8)},
  };
  for (const auto& [name, bytes] : damaged) {
    WriteText("png/" + name + ".png", bytes);
    const Status status = DecodeLabelPng(root_ + "/png/" + name + ".png", 4, 4, &out);
    EXPECT_EQ(status.code(), StatusCode::kDataLoss) << name << ": " << status.message();
    EXPECT_TRUE(Contains(status.message(), root_ + "/png/" + name + ".png: cannot read or decode"))
        << name;
    EXPECT_EQ(status.message().find('\n'), std::string::npos) << name;
    // OpenCV did not decode these either.
    EXPECT_TRUE(cv::imread(root_ + "/png/" + name + ".png", cv::IMREAD_UNCHANGED).empty()) << name;
  }
}

}  // namespace
}  // namespace nd
