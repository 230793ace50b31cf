#include "cache/activation_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache/activation_record.h"
#include "cache/cache_keys.h"
#include "cache/pipeline_keys.h"
#include "common/base/digest.h"
#include "common/base/half.h"
#include "tests/testing/files.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

using ::nd::testing::TempDir;

ActivationMap Map(int units, int h, int w, std::vector<float> data) {
  ActivationMap m;
  m.units = units;
  m.h = h;
  m.w = w;
  m.data = std::move(data);
  return m;
}

std::string Hex64(int i) {  // a fake 64-hex-digit image digest
  char buf[65];
  std::snprintf(buf, sizeof(buf), "%064x", i);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Records

TEST(ActivationRecordTest, Float32RoundTripIsExact) {
  const float inf = std::numeric_limits<float>::infinity();
  ActivationMap in = Map(2, 1, 3, {1.0f, -2.5f, 1e-40f, 3.4e38f, -inf, 0.1f});
  auto rec = EncodeActivation(in, DType::kFloat32);
  ND_ASSERT_OK(rec);
  EXPECT_EQ(rec->size(), 24u + 6 * 4);  // 24-byte header + 6 float32
  ActivationMap out;
  ND_ASSERT_OK(DecodeActivation(*rec, &out));
  EXPECT_EQ(out.units, 2);
  EXPECT_EQ(out.h, 1);
  EXPECT_EQ(out.w, 3);
  EXPECT_EQ(out.data, in.data);
}

TEST(ActivationRecordTest, Float16RoundTripEqualsHalfRounding) {
  // One unit, max 65504 (= 2^16 - 32) -> k = floor(log2 65504) - 14 = 1. Scaling by a
  // power of two keeps the rounding of normal halves: 1 + 2^-11 is a tie that rounds to even 1.0;
  // 0.1 -> 0x2E66 = 1638/16384 (hand-derived), as x.half() gives.
  ActivationMap in = Map(1, 2, 2, {1.0f + std::ldexp(1.0f, -11), 0.1f, -0.0f, 65504.0f});
  auto rec = EncodeActivation(in);  // float16 is the default
  ND_ASSERT_OK(rec);
  EXPECT_EQ(rec->size(), 24u + 8 + 4 * 2);  // header, scale table of 1 unit padded to 8, payload
  auto header = DecodeActivationHeader(*rec);
  ND_ASSERT_OK(header);
  EXPECT_EQ(header->dtype, DType::kFloat16);
  EXPECT_EQ(header->version, 2);
  EXPECT_EQ(static_cast<int8_t>((*rec)[24]), 1);
  ActivationMap out;
  ND_ASSERT_OK(DecodeActivation(*rec, &out));
  EXPECT_EQ(out.data[0], 1.0f);
  EXPECT_EQ(out.data[1], 0.0999755859375f);
  EXPECT_EQ(out.data[2], 0.0f);
  EXPECT_TRUE(std::signbit(out.data[2]));
  EXPECT_EQ(out.data[3], 65504.0f);
}

TEST(ActivationRecordTest, Float16ScalesMapsThatWouldOverflow) {
  // Unit 0: max 1e6, floor(log2 1e6) = 19 -> k = 5: 1e6/32 = 31250 -> nearest half (spacing 16)
  // 31248 -> 31248*32 = 999936. Unit 1: 3 -> k = 1 - 14 = -13: 3*2^13 = 24576, exact.
  ActivationMap in = Map(2, 1, 1, {1e6f, 3.0f});
  auto rec = EncodeActivation(in, DType::kFloat16);
  ND_ASSERT_OK(rec);
  EXPECT_EQ(static_cast<int8_t>((*rec)[24]), 5);
  EXPECT_EQ(static_cast<int8_t>((*rec)[25]), -13);
  ActivationMap out;
  ND_ASSERT_OK(DecodeActivation(*rec, &out));
  EXPECT_EQ(out.data[0], 999936.0f);
  EXPECT_EQ(out.data[1], 3.0f);
}

// Regression (issue 16): a GoogLeNet inception5b at random init has activations of ~1e-11, which
// plain float16 stores as 0 (every threshold 0, no detector). Per-unit scales keep 11 significant
// bits for tiny and huge units side by side in one record.
TEST(ActivationRecordTest, Float16KeepsTinyAndHugeUnitsToHalfPrecision) {
  const std::vector<float> values = {3.1e-11f, -7.7e-12f, 1.0e-11f, 0.0f,     // unit 0: tiny
                                     2.5e+6f,  9.9e+5f,   -1.3e+6f, 4.0e+4f,  // unit 1: huge
                                     0.75f,    0.0f,      1e-3f,    -0.25f};  // unit 2: ordinary
  auto rec = EncodeActivation(Map(3, 2, 2, values), DType::kFloat16);
  ND_ASSERT_OK(rec);
  ActivationMap out;
  ND_ASSERT_OK(DecodeActivation(*rec, &out));
  ASSERT_EQ(out.data.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    // Half precision: relative error at most 2^-11 (values are normal halves once scaled).
    EXPECT_LE(std::fabs(out.data[i] - values[i]), std::ldexp(std::fabs(values[i]), -11))
        << i << ": " << values[i] << " read back as " << out.data[i];
    EXPECT_EQ(out.data[i] == 0.0f, values[i] == 0.0f) << i;
  }
  // Order is kept within a unit, which is what thresholds and masks depend on.
  EXPECT_GT(out.data[0], out.data[2]);
  EXPECT_GT(out.data[2], out.data[1]);
}

// A record as format version 1 wrote it (cache/FORMAT.md before per-unit scaling): no scale table,
// byte 7 one scale for the record. Built here byte by byte, independently of the encoder.
std::string VersionOneRecord(DType dtype, const std::vector<uint16_t>& halves,
                             const std::vector<float>& floats) {
  const bool f16 = dtype == DType::kFloat16;
  const uint32_t n = static_cast<uint32_t>(f16 ? halves.size() : floats.size());
  std::string r(24, '\0');
  r[0] = 'N', r[1] = 'D', r[2] = 'A', r[3] = 'C';
  r[4] = 1;  // version 1, little-endian
  r[6] = static_cast<char>(dtype);
  r[8] = static_cast<char>(n);  // units = n, h = w = 1
  r[12] = 1;
  r[16] = 1;
  if (f16) {
    r.append(reinterpret_cast<const char*>(halves.data()), halves.size() * 2);
  } else {
    r.append(reinterpret_cast<const char*>(floats.data()), floats.size() * 4);
  }
  uint32_t crc = Crc32(r.data(), 20);
  crc = Crc32(r.data() + 24, r.size() - 24, crc);
  for (int i = 0; i < 4; ++i) r[20 + i] = static_cast<char>((crc >> (8 * i)) & 0xFF);
  return r;
}

TEST(ActivationRecordTest, VersionOneRecordsAreReadExactlyOrRefusedInOneLine) {
  ActivationMap out;
  // float32: same layout and values in both versions: read correctly.
  ASSERT_TRUE(
      DecodeActivation(VersionOneRecord(DType::kFloat32, {}, {1.5f, -2.0f, 1e-12f}), &out).ok());
  EXPECT_EQ(out.data, (std::vector<float>{1.5f, -2.0f, 1e-12f}));
  // float16: may hold underflowed values: refused, one line, never read.
  const std::string old16 = VersionOneRecord(DType::kFloat16, {0x3C00, 0x0000}, {});
  Status s = DecodeActivation(old16, &out);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("format version 1"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
  EXPECT_FALSE(DecodeActivationHeader(old16).ok());
}

TEST(ActivationRecordTest, BadShapeIsInvalidArgument) {
  EXPECT_EQ(EncodeActivation(Map(2, 2, 2, {1, 2, 3})).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeActivation(Map(0, 1, 1, {})).status().code(), StatusCode::kInvalidArgument);
}

TEST(ActivationRecordTest, CorruptionIsDataLoss) {
  auto rec = EncodeActivation(Map(1, 2, 2, {1, 2, 3, 4}), DType::kFloat32);
  ND_ASSERT_OK(rec);
  ActivationMap out;

  std::string flipped = *rec;
  flipped[24 + 5] ^= 0x01;  // one payload bit
  Status s = DecodeActivation(flipped, &out);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("checksum"), std::string::npos) << s.message();

  std::string shape = *rec;
  shape[16] = 3;  // w=3: the header no longer matches the payload size
  EXPECT_EQ(DecodeActivation(shape, &out).code(), StatusCode::kDataLoss);

  EXPECT_EQ(DecodeActivation(rec->substr(0, rec->size() - 1), &out).code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeActivation(rec->substr(0, 10), &out).code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeActivation("", &out).code(), StatusCode::kDataLoss);

  std::string magic = *rec;
  magic[0] = 'X';
  s = DecodeActivation(magic, &out);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("magic"), std::string::npos) << s.message();

  std::string version = *rec;
  version[4] = 9;
  s = DecodeActivation(version, &out);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("version"), std::string::npos) << s.message();

  std::string dtype = *rec;
  dtype[6] = 7;
  EXPECT_EQ(DecodeActivation(dtype, &out).code(), StatusCode::kDataLoss);
}

// The one threshold format (cache/FORMAT.md, "Threshold record"): "NDT1", u32 count, doubles.
TEST(ActivationRecordTest, ThresholdsRoundTripExactly) {
  std::vector<double> t = {0.125, -3.0, 1e-300};
  const std::string rec = EncodeThresholdValues(t);
  ASSERT_EQ(rec.size(), 8u + 3 * 8);  // magic, count, three doubles
  EXPECT_EQ(rec.substr(0, 4), "NDT1");
  std::vector<double> back;
  ND_ASSERT_OK(DecodeThresholdValues(rec, &back));
  EXPECT_EQ(back, t);
  auto not_thresholds = EncodeActivation(Map(1, 2, 1, {1, 2}), DType::kFloat32);
  EXPECT_EQ(DecodeThresholdValues(*not_thresholds, &back).code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeThresholdValues(rec.substr(0, rec.size() - 1), &back).code(),
            StatusCode::kDataLoss);
}

TEST(ActivationRecordTest, DTypeNamesMatchTheConfigSpelling) {
  EXPECT_STREQ(DTypeName(DType::kFloat16), "float16");
  EXPECT_EQ(*ParseDType("float32"), DType::kFloat32);
  EXPECT_EQ(*ParseDType("float16"), DType::kFloat16);
  EXPECT_EQ(ParseDType("bfloat16").status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Keys

TEST(CacheKeysTest, LayerPrefixIsFixedWidthAndDependsOnEveryField) {
  LayerId base{"aa11", "torchvision", 224, "layer4", DType::kFloat16};
  const std::string p = LayerKeyPrefix(base);
  EXPECT_EQ(p.size(), 35u);
  EXPECT_EQ(p.substr(0, 2), "a/");
  EXPECT_EQ(p.back(), '/');
  EXPECT_EQ(p, LayerKeyPrefix("aa11", "torchvision", 224, "layer4"));

  std::set<std::string> prefixes = {p};
  LayerId v = base;
  v.model_digest_hex = "aa12";
  prefixes.insert(LayerKeyPrefix(v));
  v = base;
  v.preprocess = "netdissect";
  prefixes.insert(LayerKeyPrefix(v));
  v = base;
  v.input_size = 227;
  prefixes.insert(LayerKeyPrefix(v));
  v = base;
  v.layer = "layer3";
  prefixes.insert(LayerKeyPrefix(v));
  v = base;
  v.dtype = DType::kFloat32;
  prefixes.insert(LayerKeyPrefix(v));
  EXPECT_EQ(prefixes.size(), 6u);

  // Length-delimited fields: moving a character across a field boundary changes the key.
  LayerId a{"d", "ab", 224, "c", DType::kFloat16};
  LayerId b{"d", "a", 224, "bc", DType::kFloat16};
  EXPECT_NE(LayerKeyPrefix(a), LayerKeyPrefix(b));

  const std::string key = ActivationKey(p, Hex64(7));
  EXPECT_EQ(key.size(), 35u + 64u);
  EXPECT_EQ(key.substr(0, 35), p);
  EXPECT_EQ(KeyGroup(key), p);
}

TEST(CacheKeysTest, ThresholdKeyEncodesTheQuantileExactly) {
  LayerId id{"aa11", "torchvision", 224, "layer4", DType::kFloat16};
  const std::string k = ThresholdKey(id, 0.005);
  // IEEE-754 double 0.005 = 0x3F747AE147AE147B (derived with Python's struct.pack('>d')).
  EXPECT_EQ(k, "t/" + LayerHash(id) + "/3f747ae147ae147b");
  EXPECT_EQ(ThresholdKey(id, 0.01), "t/" + LayerHash(id) + "/3f847ae147ae147b");
  EXPECT_EQ(ManifestKey(id), "m/" + LayerHash(id) + "/");
  EXPECT_EQ(KeyLayerHash(k), LayerHash(id));
  EXPECT_EQ(KeyLayerHash(BlobKey("labels", "x")), "");
  EXPECT_EQ(BlobKey("labels", "img1"), "b/labels/img1");
  EXPECT_EQ(KeyGroup("b/labels/img1"), "b/labels/");
  EXPECT_EQ(KeyGroup("noslash"), "noslash");
}

TEST(CacheKeysTest, ManifestRoundTripEscapesNewlines) {
  LayerManifest m;
  m.model_path = "/models/odd\nname\\x.pt";
  m.model_digest_hex = "abc";
  m.preprocess = "netdissect";
  m.input_size = 227;
  m.layer = "features.10";
  m.dtype = DType::kFloat32;
  m.units = 256;
  m.h = 13;
  m.w = 13;
  LayerManifest back;
  ND_ASSERT_OK(DecodeLayerManifest(EncodeLayerManifest(m), &back));
  EXPECT_EQ(back.model_path, m.model_path);
  EXPECT_EQ(back.layer, "features.10");
  EXPECT_EQ(back.input_size, 227);
  EXPECT_EQ(back.dtype, DType::kFloat32);
  EXPECT_EQ(back.units, 256);
  EXPECT_EQ(ManifestKey(back.id()), ManifestKey(m.id()));
  EXPECT_EQ(DecodeLayerManifest("garbage", &back).code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeLayerManifest("nd-layer-manifest 1\nlayer=x\n", &back).code(),
            StatusCode::kDataLoss);
}

TEST(CacheKeysTest, ManifestLastUseIsOptionalAndRoundTrips) {
  const std::string base =
      "nd-layer-manifest 1\nmodel_digest=abc\npreprocess=netdissect\ninput_size=224\n"
      "layer=layer4\ndtype=f16\n";
  LayerManifest m;
  ND_ASSERT_OK(DecodeLayerManifest(base, &m));
  EXPECT_EQ(m.last_used_unix, 0);  // written before stamps existed: unknown
  EXPECT_EQ(EncodeLayerManifest(m).find("last_used"), std::string::npos);
  ND_ASSERT_OK(DecodeLayerManifest(base + "last_used=1795651200\n", &m));
  EXPECT_EQ(m.last_used_unix, 1795651200);  // 2026-11-26 00:00 UTC
  LayerManifest back;
  ND_ASSERT_OK(DecodeLayerManifest(EncodeLayerManifest(m), &back));
  EXPECT_EQ(back.last_used_unix, 1795651200);
  EXPECT_EQ(ManifestKey(back.id()), ManifestKey(m.id()));  // the stamp is not part of the identity
  EXPECT_EQ(DecodeLayerManifest(base + "last_used=-5\n", &m).code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeLayerManifest(base + "last_used=\n", &m).code(), StatusCode::kDataLoss);
}

// ---------------------------------------------------------------------------------------------
// The LMDB cache

// A float16 record of format version 1 counts as missing for decode, so `up` forwards the image
// again and overwrites it; a version 1 float32 record and a current record count as present.
TEST(ActivationCacheTest, VersionOneFloat16RecordsAreNotCurrent) {
  TempDir tmp;
  auto cache = ActivationCache::Open({tmp.path()});
  ND_ASSERT_OK(cache);
  const std::string p = LayerKeyPrefix("aa11", "torchvision", 224, "layer4");
  auto current = EncodeActivation(Map(1, 1, 2, {1e-11f, 2e-11f}));
  ND_ASSERT_OK(current);
  ASSERT_TRUE(
      cache
          ->PutBatch({{ActivationKey(p, Hex64(1)), VersionOneRecord(DType::kFloat16, {0, 0}, {})},
                      {ActivationKey(p, Hex64(2)),
                       VersionOneRecord(DType::kFloat32, {}, {1e-11f, 2e-11f})},
                      {ActivationKey(p, Hex64(3)), *current},
                      {ActivationKey(p, Hex64(4)), "NDAC garbage"}})
          .ok());
  EXPECT_TRUE(*cache->Contains(ActivationKey(p, Hex64(1))));
  EXPECT_FALSE(*cache->ContainsCurrentActivation(ActivationKey(p, Hex64(1))));
  EXPECT_TRUE(*cache->ContainsCurrentActivation(ActivationKey(p, Hex64(2))));
  EXPECT_TRUE(*cache->ContainsCurrentActivation(ActivationKey(p, Hex64(3))));
  EXPECT_FALSE(*cache->ContainsCurrentActivation(ActivationKey(p, Hex64(4))));
  EXPECT_FALSE(*cache->ContainsCurrentActivation(ActivationKey(p, Hex64(5))));
  ActivationMap out;
  EXPECT_EQ(cache->GetActivation(ActivationKey(p, Hex64(1)), &out).code(), StatusCode::kDataLoss);
  ND_ASSERT_OK(cache->GetActivation(ActivationKey(p, Hex64(3)), &out));
  EXPECT_GT(out.data[1], out.data[0]);
  EXPECT_GT(out.data[0], 0.0f);
}

TEST(ActivationCacheTest, PutBatchGetAcrossReopen) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/nested/cache";
  const std::string p = LayerKeyPrefix("aa11", "torchvision", 224, "layer4");
  ActivationMap m = Map(2, 2, 2, {0.5f, 1, 2, 3, -4, 5, 6, 7});
  {
    auto cache = ActivationCache::Open({dir});
    ND_ASSERT_OK(cache);
    auto rec = EncodeActivation(m);
    ND_ASSERT_OK(rec);
    ND_ASSERT_OK(cache->PutBatch({{ActivationKey(p, Hex64(1)), *rec}, {"b/x/y", "hello"}}));
    auto has = cache->Contains(ActivationKey(p, Hex64(1)));
    ND_ASSERT_OK(has);
    EXPECT_TRUE(*has);
  }
  auto cache = ActivationCache::Open({dir});
  ND_ASSERT_OK(cache);
  std::string value;
  ND_ASSERT_OK(cache->Get("b/x/y", &value));
  EXPECT_EQ(value, "hello");
  ActivationMap out;
  ND_ASSERT_OK(cache->GetActivation(ActivationKey(p, Hex64(1)), &out));
  EXPECT_EQ(out.data, m.data);  // all values are exact in float16
  EXPECT_FALSE(*cache->Contains(ActivationKey(p, Hex64(2))));
  Status missing = cache->Get(ActivationKey(p, Hex64(2)), &value);
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find(Hex64(2)), std::string::npos);
  EXPECT_EQ(cache->GetActivation("b/x/y", &out).code(), StatusCode::kDataLoss);
}

TEST(ActivationCacheTest, MapGrowsWhenABatchDoesNotFit) {
  TempDir tmp;
  CacheOptions opt;
  opt.dir = tmp.path();
  opt.map_size_bytes = 64 * 1024;
  auto cache = ActivationCache::Open(opt);
  ND_ASSERT_OK(cache);
  const uint64_t before = cache->map_size_bytes();
  EXPECT_EQ(before, 64u * 1024);
  std::vector<std::pair<std::string, std::string>> batch;
  for (int i = 0; i < 40; ++i)
    batch.emplace_back(BlobKey("big", Hex64(i)), std::string(16384, 'a' + i % 26));
  Status put = cache->PutBatch(batch);  // 640 KiB of values in one transaction
  ND_ASSERT_OK(put);
  EXPECT_GT(cache->map_size_bytes(), 640u * 1024);
  for (int i = 0; i < 40; ++i) {
    std::string v;
    ND_ASSERT_OK(cache->Get(BlobKey("big", Hex64(i)), &v));
    EXPECT_EQ(v, std::string(16384, 'a' + i % 26));
  }
}

TEST(ActivationCacheTest, MapGrowthStopsAtTheLimit) {
  TempDir tmp;
  CacheOptions opt;
  opt.dir = tmp.path();
  opt.map_size_bytes = 64 * 1024;
  opt.max_map_size_bytes = 128 * 1024;
  auto cache = ActivationCache::Open(opt);
  ND_ASSERT_OK(cache);
  Status s = cache->PutBatch({{"b/big/x", std::string(1 << 20, 'x')}});
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_NE(s.message().find(tmp.path()), std::string::npos) << s.message();
  EXPECT_FALSE(*cache->Contains("b/big/x"));  // nothing of a failed batch is stored
}

TEST(ActivationCacheTest, ScanReturnsExactlyThePrefixInOrderAcrossChunks) {
  TempDir tmp;
  auto cache = ActivationCache::Open({tmp.path()});
  ND_ASSERT_OK(cache);
  // 5000 keys under "b/p/" (more than one scan chunk), plus neighbours that must not appear.
  std::vector<std::pair<std::string, std::string>> batch;
  for (int i = 4999; i >= 0; --i) batch.emplace_back(BlobKey("p", Hex64(i)), std::to_string(i));
  batch.emplace_back("b/o/zzz", "before");
  batch.emplace_back("b/p", "shorter than the prefix");
  batch.emplace_back("b/q/", "after");
  ND_ASSERT_OK(cache->PutBatch(batch));
  std::vector<std::string> seen;
  ASSERT_TRUE(cache
                  ->Scan("b/p/",
                         [&](std::string_view k, std::string_view v) {
                           EXPECT_EQ(std::string(v), std::to_string(seen.size()));
                           seen.emplace_back(k);
                           return true;
                         })
                  .ok());
  ASSERT_EQ(seen.size(), 5000u);
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(seen[i], BlobKey("p", Hex64(i)));

  int calls = 0;  // early stop
  ASSERT_TRUE(
      cache->Scan("b/p/", [&](std::string_view, std::string_view) { return ++calls < 3; }).ok());
  EXPECT_EQ(calls, 3);
  calls = 0;
  ASSERT_TRUE(
      cache->Scan("zz", [&](std::string_view, std::string_view) { return ++calls > 0; }).ok());
  EXPECT_EQ(calls, 0);

  auto n = cache->DeletePrefix("b/p/");
  ND_ASSERT_OK(n);
  EXPECT_EQ(*n, 5000u);
  EXPECT_TRUE(*cache->Contains("b/p"));
  EXPECT_TRUE(*cache->Contains("b/q/"));
  auto d = cache->Delete({"b/p", "b/never"});
  ND_ASSERT_OK(d);
  EXPECT_EQ(*d, 1u);
  EXPECT_FALSE(*cache->Contains("b/p"));
}

TEST(ActivationCacheTest, StatsAndVerify) {
  TempDir tmp;
  auto cache = ActivationCache::Open({tmp.path()});
  ND_ASSERT_OK(cache);
  LayerManifest man;
  man.model_path = "m.pt";
  man.model_digest_hex = "aa11";
  man.preprocess = "torchvision";
  man.input_size = 224;
  man.layer = "layer4";
  const std::string p = LayerKeyPrefix(man.id());
  auto rec = EncodeActivation(Map(1, 1, 2, {1, 2}));
  std::string bad = *rec;
  bad.back() ^= 0x40;
  ASSERT_TRUE(cache
                  ->PutBatch({{ManifestKey(man.id()), EncodeLayerManifest(man)},
                              {ActivationKey(p, Hex64(1)), *rec},
                              {ActivationKey(p, Hex64(2)), *rec},
                              {ActivationKey(p, Hex64(3)), bad},
                              {ThresholdKey(man.id(), 0.005), EncodeThresholdValues({0.5})},
                              {ThresholdKey(man.id(), 0.01), "NDT1 truncated, not decoded"},
                              {"b/labels/x", "blob"}})
                  .ok());
  auto stats = cache->Stats();
  ND_ASSERT_OK(stats);
  EXPECT_EQ(stats->entries, 7u);
  EXPECT_GT(stats->used_bytes, 0u);
  bool found_layer = false;
  for (const auto& g : stats->groups) {
    if (g.group == p) {
      found_layer = true;
      EXPECT_EQ(g.entries, 3u);
      EXPECT_EQ(g.value_bytes,
                3 * (24u + 8 + 2 * 2));  // header, scale table (1 unit, padded), 2 halves
      ASSERT_TRUE(g.manifest.has_value());
      EXPECT_EQ(g.manifest->layer, "layer4");
    }
    if (g.group == "b/labels/") {
      EXPECT_FALSE(g.manifest.has_value());
    }
  }
  EXPECT_TRUE(found_layer);
  EXPECT_EQ(stats->groups.size(), 4u);  // a/<h>/, b/labels/, m/<h>/, t/<h>/

  auto report = cache->Verify();
  ND_ASSERT_OK(report);
  // Activations and manifests are decoded; threshold values carry no checksum (cache/FORMAT.md).
  EXPECT_EQ(report->records_checked, 4u);  // 3 activations, 1 manifest
  EXPECT_EQ(report->bad_records, 1u);
  ASSERT_EQ(report->bad.size(), 1u);
  EXPECT_NE(report->bad[0].find(Hex64(3)), std::string::npos) << report->bad[0];
  ActivationMap out;
  Status s = cache->GetActivation(ActivationKey(p, Hex64(3)), &out);
  EXPECT_EQ(s.code(), StatusCode::kDataLoss);
  EXPECT_NE(s.message().find(Hex64(3)), std::string::npos) << s.message();
}

TEST(ActivationCacheTest, TwoHandlesInOneProcessShareTheEnvironment) {
  TempDir tmp;
  auto writer = ActivationCache::Open({tmp.path()});
  ND_ASSERT_OK(writer);
  CacheOptions ro;
  ro.dir = tmp.path();
  ro.read_only = true;
  auto reader = ActivationCache::Open(ro);
  ND_ASSERT_OK(reader);
  ND_ASSERT_OK(writer->PutBatch({{"b/k/1", "one"}}));
  std::string v;
  ND_ASSERT_OK(reader->Get("b/k/1", &v));
  EXPECT_EQ(v, "one");
  EXPECT_EQ(reader->PutBatch({{"b/k/2", "two"}}).code(), StatusCode::kFailedPrecondition);
  // Readers on other threads while the writer writes.
  std::thread t([&] {
    for (int i = 0; i < 200; ++i) {
      std::string value;
      ND_EXPECT_OK(reader->Get("b/k/1", &value));
    }
  });
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(writer->PutBatch({{BlobKey("k", Hex64(i)), "x"}}).ok());
  t.join();
  ActivationCache moved = std::move(*writer);  // the environment survives moves
  EXPECT_TRUE(*moved.Contains(BlobKey("k", Hex64(49))));
}

TEST(ActivationCacheTest, ReadOnlyOpenOfAnEmptyDirIsNotFound) {
  TempDir tmp;
  CacheOptions ro;
  ro.dir = tmp.path() + "/none";
  ro.read_only = true;
  EXPECT_EQ(ActivationCache::Open(ro).status().code(), StatusCode::kNotFound);
  ro.dir = tmp.path();
  EXPECT_EQ(ActivationCache::Open(ro).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ActivationCache::Open(CacheOptions{}).status().code(), StatusCode::kInvalidArgument);
}

TEST(ActivationCacheTest, NotWritableDirIsAClearError) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/locked";
  ASSERT_EQ(mkdir(dir.c_str(), 0500), 0);
  auto cache = ActivationCache::Open({dir});
  if (access(dir.c_str(), W_OK) == 0) {
    // Running as root: permissions do not apply, so the open must simply work.
    ND_EXPECT_OK(cache);
  } else {
    ASSERT_FALSE(cache.ok());
    EXPECT_EQ(cache.status().code(), StatusCode::kIoError);
    EXPECT_NE(cache.status().message().find(dir), std::string::npos);
    EXPECT_NE(cache.status().message().find("not writable"), std::string::npos);
  }
}

// A child process writes batches (growing a tiny map many times) while the parent reads; the
// parent must adopt the grown map (MDB_MAP_RESIZED) and finally see every batch.
TEST(ActivationCacheTest, ChildProcessWritesWhileParentReads) {
  TempDir tmp;
  CacheOptions opt;
  opt.dir = tmp.path();
  opt.map_size_bytes = 64 * 1024;
  auto parent = ActivationCache::Open(opt);
  ND_ASSERT_OK(parent);
  ND_ASSERT_OK(parent->PutBatch({{"b/start/x", "x"}}));
  constexpr int kBatches = 20, kPerBatch = 8;
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto child = ActivationCache::Open(opt);
    if (!child.ok()) _exit(2);
    for (int b = 0; b < kBatches; ++b) {
      std::vector<std::pair<std::string, std::string>> batch;
      for (int i = 0; i < kPerBatch; ++i) {
        auto rec = EncodeActivation(Map(1, 64, 64, std::vector<float>(64 * 64, float(b))));
        if (!rec.ok()) _exit(3);
        batch.emplace_back(BlobKey("child", Hex64(b * kPerBatch + i)), *rec);
      }
      if (!child->PutBatch(batch).ok()) _exit(4);
    }
    _exit(0);
  }
  int status = 0;
  pid_t done = 0;
  // Bounded wait: at most ~120 s (the child needs well under a second).
  for (int i = 0; i < 12000 && done == 0; ++i) {
    int seen = 0;
    ASSERT_TRUE(parent
                    ->Scan("b/child/",
                           [&](std::string_view, std::string_view v) {
                             ActivationMap m;
                             ND_EXPECT_OK(DecodeActivation(v, &m));
                             ++seen;
                             return true;
                           })
                    .ok());
    EXPECT_EQ(seen % kPerBatch, 0) << "a batch was visible partially";
    done = waitpid(pid, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (done == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "child did not finish";
  }
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  for (int k = 0; k < kBatches * kPerBatch; ++k) {
    ActivationMap m;
    ASSERT_TRUE(parent->GetActivation(BlobKey("child", Hex64(k)), &m).ok()) << k;
    EXPECT_EQ(m.data[17], float(k / kPerBatch));
  }
  EXPECT_GT(parent->map_size_bytes(), 64u * 1024);         // adopted the child's growth
  ASSERT_TRUE(parent->PutBatch({{"b/end/x", "x"}}).ok());  // and can still write
}

// The file pages of this process's resident set (RssFile in /proc/self/status), in KiB.
long RssFileKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("RssFile:", 0) == 0) return std::stol(line.substr(8));
  return -1;
}

// A reader of every record must not end with the layer in its RSS: 48 float32 records of 1 MiB
// (256 units of 32x32) read with GetActivation leave RssFile within 8 MiB of where it was (the
// records' pages, had they stayed mapped, would add 48 MiB), and every value read is exact.
TEST(ActivationCacheTest, ReadingEveryRecordKeepsTheRecordsOutOfTheResidentSet) {
  TempDir tmp;
  const std::string p = LayerKeyPrefix("aa11", "torchvision", 224, "layer4");
  constexpr int kRecords = 48, kUnits = 256, kSide = 32;
  auto cache = ActivationCache::Open({tmp.path()});
  ND_ASSERT_OK(cache);
  for (int r = 0; r < kRecords; r += 8) {
    std::vector<std::pair<std::string, std::string>> batch;
    for (int i = r; i < r + 8; ++i) {
      std::vector<float> data(kUnits * kSide * kSide);
      for (size_t j = 0; j < data.size(); ++j) data[j] = static_cast<float>(i * 7 + j % 1000);
      auto rec = EncodeActivation(Map(kUnits, kSide, kSide, std::move(data)), DType::kFloat32);
      ND_ASSERT_OK(rec);
      batch.emplace_back(ActivationKey(p, Hex64(i)), *rec);
    }
    ND_ASSERT_OK(cache->PutBatch(batch));
  }
  const long before = RssFileKb();
  ASSERT_GE(before, 0);
  for (int i = 0; i < kRecords; ++i) {
    ActivationMap m;
    ND_ASSERT_OK(cache->GetActivation(ActivationKey(p, Hex64(i)), &m));
    ASSERT_EQ(m.data.size(), size_t{kUnits * kSide * kSide});
    EXPECT_EQ(m.data[12345], static_cast<float>(i * 7 + 12345 % 1000));
  }
  EXPECT_LT(RssFileKb() - before, 8 * 1024) << "RssFile before " << before << " KiB";
}

}  // namespace
}  // namespace nd
