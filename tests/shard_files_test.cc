// The sharded run's exact reductions and their file formats (common/results/shard_files.h):
// top tails merge into the whole dataset's thresholds bit for bit, integer counts add, and every
// file round-trips and is refused with one line naming the file when damaged.
#include "common/results/shard_files.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/base/config.h"
#include "stages/calibrate/calibrate_stage.h"
#include "tests/testing/files.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

ActivationMap Map(int units, int h, int w, std::vector<float> values) {
  ActivationMap m;
  m.units = units;
  m.h = h;
  m.w = w;
  m.data = std::move(values);
  return m;
}

// The tails a forward task writes for these images (one unit of 1x2 values per image).
UnitTails TailsOf(const std::vector<ActivationMap>& maps, int64_t max_images, double q) {
  CalibrateStage stage(CalibrateOptions{{q}, max_images});
  for (const auto& m : maps) EXPECT_TRUE(stage.Consume(m).ok());
  UnitTails t;
  t.layer = "layer4";
  t.images = maps.size();
  t.max_images = max_images;
  EXPECT_TRUE(stage.TakeTails(&t.counts, &t.tops).ok());
  t.units = stage.units();
  t.h = stage.h();
  t.w = stage.w();
  t.keep = stage.keep();
  return t;
}

// By hand: 4 images of one unit, 1x2 values each, q = 0.25. N_max = 8 values; the quantile at
// level 0.75 needs the top 8 - floor(7 * 0.75) = 3. Shard A holds {1,5,3,7}: top {7,5,3}; shard B
// {2,8,6,4}: top {8,6,4}. Merged: n = 8, top {8,7,6}; numpy.quantile([1..8], 0.75) = 6.25
// (pos 5.25 between the sorted values 6 and 7).
TEST(ShardTails, TwoShardsMergeToTheHandComputedQuantile) {
  UnitTails a = TailsOf({Map(1, 1, 2, {1, 5}), Map(1, 1, 2, {3, 7})}, 4, 0.25);
  UnitTails b = TailsOf({Map(1, 1, 2, {2, 8}), Map(1, 1, 2, {6, 4})}, 4, 0.25);
  EXPECT_EQ(a.keep, 3u);
  EXPECT_EQ(a.tops[0], (std::vector<float>{7, 5, 3}));
  EXPECT_EQ(b.tops[0], (std::vector<float>{8, 6, 4}));
  ND_ASSERT_OK_AND_ASSIGN(UnitTails merged, MergeTails({a, b}));
  EXPECT_EQ(merged.counts[0], 8);
  EXPECT_EQ(merged.images, 4u);
  EXPECT_EQ(merged.tops[0], (std::vector<float>{8, 7, 6}));
  ND_ASSERT_OK_AND_ASSIGN(std::vector<double> t, ThresholdsFromTails(merged, 0.25));
  EXPECT_EQ(t, std::vector<double>{6.25});
  // A smaller q needs fewer top values; a larger one than the tails were kept for is refused.
  ND_ASSERT_OK_AND_ASSIGN(t, ThresholdsFromTails(merged, 0.125));  // pos 6.125: 7 + 0.125
  EXPECT_EQ(t, std::vector<double>{7.125});
  auto refused = ThresholdsFromTails(merged, 0.5);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("run the forward phase again"), std::string::npos);
}

// Property: for random activations cut into 1..5 slices, the merged tails give exactly (bit for
// bit) the thresholds of one calibrate over all images, for every requested quantile.
TEST(ShardTails, MergedThresholdsEqualOneCalibrateBitForBit) {
  std::mt19937 rng(7);
  std::normal_distribution<float> value(0.f, 1.f);
  const int units = 3, h = 2, w = 3, images = 40;
  const std::vector<double> qs{0.005, 0.05, 0.2};
  std::vector<ActivationMap> maps;
  for (int n = 0; n < images; ++n) {
    std::vector<float> v(units * h * w);
    for (float& x : v) x = std::round(value(rng) * 8) / 8;  // ties across shards
    maps.push_back(Map(units, h, w, v));
  }
  CalibrateStage whole(CalibrateOptions{qs, images});
  for (const auto& m : maps) ND_ASSERT_OK(whole.Consume(m));
  ND_ASSERT_OK_AND_ASSIGN(std::vector<UnitThresholds> expected, whole.Finish());
  for (int shards = 1; shards <= 5; ++shards) {
    std::vector<UnitTails> parts;
    for (int s = 0; s < shards; ++s) {
      const RowRange r = ShardRows(images, s, shards);
      CalibrateStage stage(CalibrateOptions{qs, images});
      for (size_t n = r.begin; n < r.end; ++n) ND_ASSERT_OK(stage.Consume(maps[n]));
      UnitTails t;
      t.layer = "l";
      t.images = r.end - r.begin;
      t.max_images = images;
      ND_ASSERT_OK(stage.TakeTails(&t.counts, &t.tops));
      t.units = stage.units();
      t.h = stage.h();
      t.w = stage.w();
      t.keep = stage.keep();
      // Through the file format, as the merge job reads them.
      ND_ASSERT_OK_AND_ASSIGN(UnitTails back, DecodeTails(EncodeTails(t), "t.ndtl"));
      parts.push_back(back);
    }
    ND_ASSERT_OK_AND_ASSIGN(UnitTails merged, MergeTails(parts));
    for (size_t k = 0; k < qs.size(); ++k) {
      ND_ASSERT_OK_AND_ASSIGN(std::vector<double> got, ThresholdsFromTails(merged, qs[k]));
      for (int u = 0; u < units; ++u) {
        uint64_t a, b;
        std::memcpy(&a, &got[u], 8);
        std::memcpy(&b, &expected[k].values[u], 8);
        EXPECT_EQ(a, b) << shards << " shards, q " << qs[k] << ", unit " << u;
      }
    }
  }
}

TEST(ShardTails, EmptySliceAddsNothing) {
  UnitTails a = TailsOf({Map(1, 1, 2, {1, 5})}, 2, 0.25);
  UnitTails empty;
  empty.layer = "layer4";
  empty.max_images = 2;
  ND_ASSERT_OK_AND_ASSIGN(UnitTails merged, MergeTails({empty, a}));
  EXPECT_EQ(merged.counts[0], 2);
  ND_ASSERT_OK_AND_ASSIGN(UnitTails back, DecodeTails(EncodeTails(empty), "e.ndtl"));
  EXPECT_EQ(back.units, 0);
}

TEST(ShardTails, DamagedFileIsRefusedNamingIt) {
  UnitTails a = TailsOf({Map(1, 1, 2, {1, 5}), Map(1, 1, 2, {3, 7})}, 4, 0.25);
  std::string bytes = EncodeTails(a);
  // By hand: 24 header bytes + "layer4" + 3 x u64 + per unit (2 x u64 + 3 floats) + CRC = 82.
  EXPECT_EQ(bytes.size(), 24u + 6 + 24 + 16 + 12 + 4);
  EXPECT_EQ(bytes.substr(0, 4), "NDTL");
  std::string flipped = bytes;
  flipped[70] ^= 1;
  auto bad = DecodeTails(flipped, "shard-1/tails/layer4.ndtl");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "shard-1/tails/layer4.ndtl: CRC mismatch (damaged or truncated)");
  auto truncated = DecodeTails(bytes.substr(0, 40), "x.ndtl");
  EXPECT_FALSE(truncated.ok());
  UnitTails other = a;
  other.layer = "layer3";
  auto mixed = MergeTails({a, other});
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("layer 'layer3'"), std::string::npos);
}

// By hand: one unit, labels 0..1 (slot 0 unused), one category. Shard 0 saw G = (0, 10), I = (0,
// 3), U = 5; shard 1 G = (0, 6), I = (0, 1), U = 4. Merged G = (0, 16), I = (0, 4), U = 9.
ShardCounts Counts(int shard, std::vector<int64_t> g, std::vector<int64_t> i,
                   std::vector<int64_t> u) {
  ShardCounts c;
  c.layer = "layer4";
  c.quantile = 0.005;
  c.shard = shard;
  c.shards = 2;
  c.units = 1;
  c.num_labels = 2;
  c.num_categories = 1;
  c.thresholds = {0.5};
  c.images_scored = 2;
  c.rows = 2;
  c.masks = MaskStats{1, 0, 2, 3, 4};
  c.g = std::move(g);
  c.i = std::move(i);
  c.u = std::move(u);
  return c;
}

TEST(ShardCountsFile, FormatIsTheDocumentedText) {
  ShardCounts c = Counts(1, {0, 6}, {0, 1}, {4});
  c.skipped.push_back({7, "labels unreadable"});
  c.upstream_skipped.emplace_back(3, "a.jpg: does not decode");
  EXPECT_EQ(FormatCounts(c),
            "nd-shard-counts 1\n"
            "layer layer4\n"
            "quantile 0.0050000000000000001\n"
            "shard 1 2\n"
            "shape 1 2 1 paper\n"
            "thresholds 3fe0000000000000\n"
            "images_scored 2\n"
            "rows 2\n"
            "forward_images 0\n"
            "repeated_label_pixels 0\n"
            "label_read_failures 0\n"
            "fetch_failures 0\n"
            "masks 1 0 2 3 4\n"
            "cpu_seconds 0\n"
            "upstream_skip 3 a.jpg: does not decode\n"
            "score_skip 7 labels unreadable\n"
            "g 0 6\n"
            "i 0 0 1\n"
            "u 0 4\n"
            "end\n");
  ND_ASSERT_OK_AND_ASSIGN(ShardCounts back, ParseCounts(FormatCounts(c), "counts.txt"));
  EXPECT_EQ(FormatCounts(back), FormatCounts(c));
}

TEST(ShardCountsFile, CountsAddExactly) {
  ND_ASSERT_OK_AND_ASSIGN(ShardCounts m, MergeCounts({Counts(0, {0, 10}, {0, 3}, {5}),
                                                      Counts(1, {0, 6}, {0, 1}, {4})}));
  EXPECT_EQ(m.g, (std::vector<int64_t>{0, 16}));
  EXPECT_EQ(m.i, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(m.u, (std::vector<int64_t>{9}));
  EXPECT_EQ(m.images_scored, 4);
  EXPECT_EQ(m.masks.cells_mixed, 8);
  // IoU of label 1 from the merged counts: 4 / (9 + 16 - 4) = 4/21, as IouTally computes it.
  ShardCounts other = Counts(1, {0, 6}, {0, 1}, {4});
  other.thresholds = {0.25};
  auto refused = MergeCounts({Counts(0, {0, 10}, {0, 3}, {5}), other});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("another threshold for unit 0"), std::string::npos);
}

TEST(ShardCountsFile, BadLineIsNamed) {
  const std::string good = FormatCounts(Counts(0, {0, 10}, {0, 3}, {5}));
  std::string text = good;
  const size_t at = text.find("g 0 10");
  text.replace(at, 6, "g 0 1x");
  auto bad = ParseCounts(text, "shard-0/counts/layer4/counts.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "shard-0/counts/layer4/counts.txt:15: g: '1x' is not an integer");
  auto cut = ParseCounts(good.substr(0, good.find("g 0 10")), "c.txt");
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.status().message(), "c.txt: ends before 'g' (line 15)");
}

TEST(ShardForwardRecord, RoundTripAndErrors) {
  ForwardRecord r{2, 3, 1, 40, 24, 16};
  EXPECT_EQ(FormatForwardRecord(r),
            "nd-shard-forward 1\nshard 2 3\nrestart 1\nimages 40\nforward_images 24\n"
            "images_from_cache 16\nend\n");
  testing::TempDir dir("shard_forward");
  const std::string path = ForwardRecordPath(dir.path(), 2);
  ND_ASSERT_OK(WriteForwardRecord(path, r));
  ND_ASSERT_OK_AND_ASSIGN(ForwardRecord back, ReadForwardRecord(path));
  EXPECT_EQ(back.images_from_cache, 16);
  auto bad = ParseForwardRecord("nd-shard-forward 1\nshard 2 3\nrestart -1\n", "f.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "f.txt:3: restart: negative");
}

TEST(ShardLayout, PathsAndSlices) {
  EXPECT_EQ(TailsFilePath("/d", 2, "layer4"), "/d/shard-2/tails/layer4.ndtl");
  EXPECT_EQ(CountsFilePath("/d", 0, "layer4", 0.005, false), "/d/shard-0/counts/layer4/counts.txt");
  EXPECT_EQ(MergedThresholdsPath("/d", "layer3", 0.01, true),
            "/d/thresholds/layer3/q0.01/thresholds.csv");
  // 10 rows in 3 slices: [0,3) [3,6) [6,10); 2 rows in 3 slices: one is empty.
  EXPECT_EQ(ShardRows(10, 0, 3).end, 3u);
  EXPECT_EQ(ShardRows(10, 2, 3).begin, 6u);
  EXPECT_EQ(ShardRows(10, 2, 3).end, 10u);
  EXPECT_EQ(ShardRows(2, 0, 3).end - ShardRows(2, 0, 3).begin, 0u);
}

}  // namespace
}  // namespace nd
