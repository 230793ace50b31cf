// Tests for the extract stage's worker pool (stages/extract/extract_pool.h): several workers
// write the same cache as one, precision options change only rounding, a failing worker stops the
// pool with a clear Status, and `nd-pipeline up` with model.device = ["cpu", "cpu"] gives the
// same tally.csv as with one device. Models: the ResNet-18 fixture of make_test_models.py (the
// test_models fixture); CPU only (CUDA cases skip where LibTorch has no CUDA).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/cuda.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cache/activation_cache.h"
#include "cache/activation_record.h"
#include "cache/cache_keys.h"
#include "cache/pipeline_keys.h"
#include "common/torch/model_runner.h"
#include "stages/extract/activation_writer.h"
#include "stages/extract/extract_pool.h"
#include "tests/testing/e2e_support.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

constexpr int kSize = 64;  // the fixtures' input size
const std::vector<std::string> kLayers = {"layer1", "layer3.1.conv2", "fc"};

std::string FixtureDir() {
  const char* dir = std::getenv("ND_TEST_MODELS_DIR");
  return dir != nullptr ? dir : ND_TEST_MODELS_DIR;
}

std::string ResNet() { return FixtureDir() + "/resnet18_traced.pt"; }

// A 64-hex-digit stand-in for an image's SHA-256, unique per row.
std::string Digest(uint32_t row) {
  char buf[65];
  std::snprintf(buf, sizeof(buf), "%016x%016x%016x%016x", row, row * 7 + 1, row * 13 + 2,
                row * 31 + 3);
  return buf;
}

// The deterministic image of a row: N(0, 1) noise from a generator seeded with the row.
torch::Tensor Image(uint32_t row) {
  torch::manual_seed(1000 + row);
  return torch::randn({3, kSize, kSize});
}

// One decode batch: `rows` run through the network (their images, in order, in the tensor),
// `cached` and `skipped` only passed on.
ImageBatch MakeBatch(uint64_t id, const std::vector<uint32_t>& rows,
                     const std::vector<uint32_t>& cached = {},
                     const std::vector<uint32_t>& skipped = {}) {
  ImageBatch b;
  b.batch_id = id;
  b.height = b.width = kSize;
  std::vector<torch::Tensor> images;
  for (uint32_t r : rows) {
    b.images.push_back({r, Digest(r)});
    images.push_back(Image(r));
  }
  for (uint32_t r : cached) b.cached.push_back({r, Digest(r)});
  for (uint32_t r : skipped) b.skipped.push_back({r, "row " + std::to_string(r) + " is bad"});
  if (!images.empty()) {
    torch::Tensor t = torch::stack(images).contiguous();
    b.tensor.assign(static_cast<const char*>(t.data_ptr()), t.numel() * sizeof(float));
  }
  return b;
}

// Batches of odd sizes (16 images), one made only of cached images, skipped rows in two.
std::vector<ImageBatch> Batches() {
  return {MakeBatch(0, {0, 1, 2}),
          MakeBatch(1, {3}, {}, {4}),
          MakeBatch(2, {5, 6, 7, 8, 9}),
          MakeBatch(3, {}, {10, 11}),
          MakeBatch(4, {12, 13}, {14}),
          MakeBatch(5, {15, 16, 17, 18}, {}, {19}),
          MakeBatch(6, {20})};
}
constexpr int kForwarded = 16;  // 3 + 1 + 5 + 2 + 4 + 1

PipelineConfig Config(const fs::path& cache_dir, std::vector<std::string> devices,
                      const std::string& dtype = "float16", const std::string& precision = "fp32") {
  PipelineConfig c;
  c.model.path = ResNet();
  c.model.layers = kLayers;
  c.model.input_size = kSize;
  c.model.devices = std::move(devices);
  c.model.precision = precision;
  // The records are compared with a plain ModelRunner (contiguous NCHW) bit for bit: the same
  // memory format, so the same convolution kernels and rounding.
  c.model.memory_format = "contiguous";
  c.cache.dir = cache_dir.string();
  c.cache.dtype = dtype;
  c.cache.map_size_mb = 64;
  return c;
}

struct PoolRun {
  std::vector<ReadyBatch> ready;  // as Next returned them
  uint64_t forward_images = 0;
  std::string precision;
};

// Opens a pool on `config`, submits `batches` from a producer thread while taking ReadyBatches
// here until the pool drains (at most 120 s).
PoolRun RunPool(const PipelineConfig& config, std::vector<ImageBatch> batches) {
  PoolRun run;
  auto pool = ExtractPool::Open(config);
  ND_EXPECT_OK(pool);
  if (!pool.ok()) return run;
  ExtractPool& p = **pool;
  run.precision = p.precision();
  std::thread producer([&] {
    for (ImageBatch& b : batches) {
      Status s = p.Submit(std::move(b));
      ND_EXPECT_OK(s);
      if (!s.ok()) return;
    }
    p.Close();
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  for (;;) {
    ReadyBatch ready;
    auto event = p.Next(200, &ready);
    ND_EXPECT_OK(event);
    if (!event.ok() || *event == ExtractPool::Event::kDrained) break;
    if (*event == ExtractPool::Event::kReady) run.ready.push_back(std::move(ready));
    if (std::chrono::steady_clock::now() > deadline) {
      ADD_FAILURE() << "the pool did not drain within 120 s";
      p.Abort(Cancelled("test timed out"));
      break;
    }
  }
  producer.join();
  run.forward_images = p.forward_images();
  return run;
}

// Every key and value of the cache in `dir`.
std::map<std::string, std::string> Dump(const fs::path& dir) {
  std::map<std::string, std::string> all;
  CacheOptions o;
  o.dir = dir.string();
  o.read_only = true;
  auto cache = ActivationCache::Open(o);
  ND_EXPECT_OK(cache);
  if (!cache.ok()) return all;
  Status s = cache->Scan("", [&](std::string_view k, std::string_view v) {
    all.emplace(std::string(k), std::string(v));
    return true;
  });
  ND_EXPECT_OK(s);
  return all;
}

std::string Describe(const ReadyBatch& r) {
  std::string s = "batch " + std::to_string(r.batch_id) + " forwarded " +
                  std::to_string(r.forwarded) + " images";
  for (const auto& i : r.images) s += " " + std::to_string(i.row);
  s += " skipped";
  for (const auto& i : r.skipped) s += " " + std::to_string(i.row);
  return s;
}

class ExtractWorkersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    ASSERT_TRUE(fs::exists(ResNet()))
        << ResNet() << " missing; run ctest (make_test_models sets it up)";
    root_ = fs::temp_directory_path() /
            ("nd_extract_workers_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

// The record a cache of `config` holds for `row` at layer `l`, decoded.
ActivationMap Stored(const PipelineConfig& config, size_t l, uint32_t row) {
  ActivationMap map;
  auto layers = ConfiguredLayers(config);
  ND_EXPECT_OK(layers);
  CacheOptions o;
  o.dir = config.cache.dir;
  o.read_only = true;
  auto cache = ActivationCache::Open(o);
  ND_EXPECT_OK(cache);
  if (!layers.ok() || !cache.ok()) return map;
  Status s = cache->GetActivation(ActivationKey(LayerKeyPrefix((*layers)[l]), Digest(row)), &map);
  ND_EXPECT_OK(s);
  return map;
}

TEST_F(ExtractWorkersTest, TwoCpuWorkersWriteByteIdenticalCacheToOne) {
  const PoolRun one = RunPool(Config(root_ / "one", {"cpu"}), Batches());
  const PoolRun two = RunPool(Config(root_ / "two", {"cpu", "cpu"}), Batches());
  const auto a = Dump(root_ / "one");
  const auto b = Dump(root_ / "two");
  // 16 forwarded images x 3 layers, plus one manifest per layer.
  EXPECT_EQ(a.size(), static_cast<size_t>(kForwarded * 3 + 3));
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [key, value] : a) {
    auto it = b.find(key);
    ASSERT_NE(it, b.end()) << "two workers lack key " << key;
    EXPECT_TRUE(it->second == value) << "value of " << key << " differs";
  }
  EXPECT_EQ(one.forward_images, static_cast<uint64_t>(kForwarded));
  EXPECT_EQ(two.forward_images, static_cast<uint64_t>(kForwarded));

  // One worker: READY notices in submission order. Two: the same notices, in any order.
  ASSERT_EQ(one.ready.size(), 7u);
  ASSERT_EQ(two.ready.size(), 7u);
  std::vector<std::string> seen_two;
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(one.ready[i].batch_id, i);
    seen_two.push_back(Describe(two.ready[i]));
  }
  std::sort(seen_two.begin(), seen_two.end());
  std::vector<std::string> seen_one;
  for (const auto& r : one.ready) seen_one.push_back(Describe(r));
  std::sort(seen_one.begin(), seen_one.end());
  EXPECT_EQ(seen_one, seen_two);
  // Hand-checked notices: batch 4 ran rows 12, 13 and passes on cached row 14; batch 3 ran none.
  EXPECT_EQ(Describe(one.ready[4]), "batch 4 forwarded 2 images 12 13 14 skipped");
  EXPECT_EQ(Describe(one.ready[3]), "batch 3 forwarded 0 images 10 11 skipped");
  EXPECT_EQ(Describe(one.ready[5]), "batch 5 forwarded 4 images 15 16 17 18 skipped 19");
}

// The float16 record of one image's activations x[units, h, w] as cache/FORMAT.md specifies it,
// computed with LibTorch independently of the cache writer: per unit, k = floor(log2 m) - 14 for
// the largest magnitude m (0 when m = 0), stored (x * 2^-k).to(kHalf), read back times 2^k.
torch::Tensor FormatFloat16(const torch::Tensor& x) {
  const torch::Tensor m = x.abs().flatten(1).amax(1).to(torch::kDouble);
  torch::Tensor k = torch::floor(torch::log2(m)) - 14;
  k = torch::where(m > 0, k, torch::zeros_like(k)).clamp(-128, 127).view({-1, 1, 1});
  const torch::Tensor scale = torch::pow(2.0, k);
  return ((x.to(torch::kDouble) / scale).to(torch::kFloat).to(torch::kHalf).to(torch::kDouble) *
          scale)
      .to(torch::kFloat);
}

TEST_F(ExtractWorkersTest, Float16RecordsEqualTorchRoundingOfTheForwardPass) {
  // The cache's float16 values are LibTorch's own .to(kHalf) rounding (round to nearest even) of
  // a plain ModelRunner's float32 output for the same batch, each unit scaled by its power of two
  // (FormatFloat16): computed here independently of the cache writer.
  const PipelineConfig config = Config(root_ / "c", {"cpu", "cpu"});
  RunPool(config, Batches());
  ModelOptions mo;
  mo.path = ResNet();
  mo.layers = kLayers;
  mo.device = "cpu";
  auto runner = ModelRunner::Load(mo);
  ND_ASSERT_OK(runner);
  const std::vector<uint32_t> rows = {5, 6, 7, 8, 9};  // batch 2, run whole as in the pool
  std::vector<torch::Tensor> images;
  for (uint32_t r : rows) images.push_back(Image(r));
  auto out = runner->Run(torch::stack(images));
  ND_ASSERT_OK(out);
  for (size_t l = 0; l < kLayers.size(); ++l) {
    for (size_t i = 0; i < rows.size(); ++i) {
      const ActivationMap m = Stored(config, l, rows[i]);
      const torch::Tensor want =
          FormatFloat16((*out)[l][static_cast<int64_t>(i)].contiguous()).contiguous();
      ASSERT_EQ(m.data.size(), static_cast<size_t>(want.numel())) << kLayers[l];
      EXPECT_EQ(std::memcmp(m.data.data(), want.data_ptr<float>(), m.data.size() * 4), 0)
          << kLayers[l] << " row " << rows[i];
    }
  }
}

TEST_F(ExtractWorkersTest, Fp16AndBf16FallBackToFp32OnCpu) {
  ModelOptions mo;
  mo.path = ResNet();
  mo.layers = kLayers;
  mo.device = "cpu";
  auto fp32 = ModelRunner::Load(mo);
  ND_ASSERT_OK(fp32);
  const torch::Tensor x = torch::stack({Image(1), Image(2), Image(3)});
  auto want = fp32->Run(x);
  ND_ASSERT_OK(want);
  for (const char* precision : {"fp16", "bf16"}) {
    mo.precision = precision;
    auto runner = ModelRunner::Load(mo);
    ND_ASSERT_OK(runner);
    EXPECT_EQ(runner->precision(), "fp32") << precision;
    auto got = runner->Run(x);
    ND_ASSERT_OK(got);
    for (size_t l = 0; l < kLayers.size(); ++l) {
      EXPECT_EQ((*got)[l].scalar_type(), torch::kFloat);
      EXPECT_TRUE(torch::equal((*got)[l], (*want)[l])) << precision << " " << kLayers[l];
    }
    // Through the pool as well: the same cache bytes as fp32.
    const PoolRun run =
        RunPool(Config(root_ / precision, {"cpu", "cpu"}, "float16", precision), Batches());
    EXPECT_EQ(run.precision, "fp32");
  }
  RunPool(Config(root_ / "fp32", {"cpu"}), Batches());
  const auto base = Dump(root_ / "fp32");
  EXPECT_EQ(base.size(), static_cast<size_t>(kForwarded * 3 + 3));
  EXPECT_TRUE(Dump(root_ / "fp16") == base);
  EXPECT_TRUE(Dump(root_ / "bf16") == base);
}

// |rounded - x| within half a unit in the last place of a format with `mantissa` stored bits
// and smallest normal 2^min_exp: relative 2^-(mantissa+1) for normal values, absolute half the
// subnormal spacing below.
void ExpectHalfUlp(const torch::Tensor& x, const torch::Tensor& rounded, int mantissa, int min_exp,
                   const std::string& what) {
  ASSERT_EQ(x.sizes(), rounded.sizes()) << what;
  const float* a = x.contiguous().data_ptr<float>();
  const torch::Tensor rc = rounded.contiguous();
  const float* r = rc.data_ptr<float>();
  const double rel = std::ldexp(1.0, -(mantissa + 1));
  const double tiny = std::ldexp(1.0, min_exp);
  const double abs_tiny = std::ldexp(1.0, min_exp - mantissa - 1);
  int64_t changed = 0, bad = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double err = std::fabs(static_cast<double>(r[i]) - a[i]);
    const double bound = std::fabs(a[i]) >= tiny ? rel * std::fabs(a[i]) : abs_tiny;
    if (err > bound) ++bad;
    if (err > 0) ++changed;
  }
  EXPECT_EQ(bad, 0) << what << ": values rounded by more than half an ulp";
  EXPECT_GT(changed, 0) << what << ": nothing was rounded; the check would be vacuous";
}

TEST_F(ExtractWorkersTest, PrecisionChangesOnlyTheRounding) {
  // Rounding the float32 activations through float16 and bfloat16 (what fp16/bf16 outputs and
  // float16 records are) moves each value by at most half an ulp of the format.
  ModelOptions mo;
  mo.path = ResNet();
  mo.layers = kLayers;
  mo.device = "cpu";
  auto runner = ModelRunner::Load(mo);
  ND_ASSERT_OK(runner);
  auto out = runner->Run(torch::stack({Image(1), Image(2), Image(3)}));
  ND_ASSERT_OK(out);
  for (size_t l = 0; l < kLayers.size(); ++l) {
    const torch::Tensor& x = (*out)[l];
    ExpectHalfUlp(x, x.to(torch::kHalf).to(torch::kFloat), 10, -14, kLayers[l] + " fp16");
    ExpectHalfUlp(x, x.to(torch::kBFloat16).to(torch::kFloat), 7, -126, kLayers[l] + " bf16");
  }

  // Through the pool: a float16 cache and a float32 cache of the same batches hold the same
  // images, layers and shapes, give the same READY notices in the same order, and differ only by
  // float16 rounding; the float32 records are the forward pass's values exactly.
  const PipelineConfig c16 = Config(root_ / "f16", {"cpu"}, "float16");
  const PipelineConfig c32 = Config(root_ / "f32", {"cpu"}, "float32");
  const PoolRun r16 = RunPool(c16, Batches());
  const PoolRun r32 = RunPool(c32, Batches());
  ASSERT_EQ(r16.ready.size(), r32.ready.size());
  for (size_t i = 0; i < r16.ready.size(); ++i)
    EXPECT_EQ(Describe(r16.ready[i]), Describe(r32.ready[i]));
  EXPECT_EQ(Dump(root_ / "f16").size(), Dump(root_ / "f32").size());
  for (size_t l = 0; l < kLayers.size(); ++l) {
    for (uint32_t row : {0u, 1u, 2u}) {  // batch 0
      const ActivationMap m16 = Stored(c16, l, row);
      const ActivationMap m32 = Stored(c32, l, row);
      ASSERT_EQ(m16.units, m32.units);
      ASSERT_EQ(m16.h, m32.h);
      ASSERT_EQ(m16.w, m32.w);
      const auto t16 = torch::from_blob(const_cast<float*>(m16.data.data()),
                                        {static_cast<int64_t>(m16.data.size())});
      const auto t32 = torch::from_blob(const_cast<float*>(m32.data.data()),
                                        {static_cast<int64_t>(m32.data.size())});
      ExpectHalfUlp(t32, t16, 10, -14, kLayers[l] + " cache float16 vs float32");
    }
  }
  // The float32 record of row 3 (batch 1, run alone) is exactly the forward pass of that image.
  auto alone = runner->Run(Image(3).unsqueeze(0));
  ND_ASSERT_OK(alone);
  for (size_t l = 0; l < kLayers.size(); ++l) {
    const ActivationMap m = Stored(c32, l, 3);
    ASSERT_EQ(m.data.size(), static_cast<size_t>((*alone)[l].numel()));
    EXPECT_EQ(std::memcmp(m.data.data(), (*alone)[l].data_ptr<float>(), m.data.size() * 4), 0)
        << kLayers[l];
  }
}

TEST_F(ExtractWorkersTest, ChannelsLastChangesOnlyTheRoundingOfTheForwardPass) {
  // model.memory_format = channels_last (what "auto" picks) runs other convolution kernels: the
  // float32 records differ from contiguous NCHW only by float rounding of the forward pass.
  PipelineConfig nchw = Config(root_ / "nchw", {"cpu"}, "float32");
  PipelineConfig nhwc = Config(root_ / "nhwc", {"cpu"}, "float32");
  nhwc.model.memory_format = "channels_last";
  const PoolRun a = RunPool(nchw, Batches());
  const PoolRun b = RunPool(nhwc, Batches());
  ASSERT_EQ(a.ready.size(), b.ready.size());
  for (size_t l = 0; l < kLayers.size(); ++l) {
    for (uint32_t row : {0u, 7u, 16u}) {
      const ActivationMap x = Stored(nchw, l, row);
      const ActivationMap y = Stored(nhwc, l, row);
      ASSERT_EQ(x.data.size(), y.data.size());
      float max_abs = 0, max_diff = 0;
      for (size_t i = 0; i < x.data.size(); ++i) {
        max_abs = std::max(max_abs, std::fabs(x.data[i]));
        max_diff = std::max(max_diff, std::fabs(x.data[i] - y.data[i]));
      }
      ASSERT_GT(max_abs, 0.0f) << kLayers[l];
      EXPECT_LE(max_diff, 1e-4f * max_abs) << kLayers[l] << " row " << row;
    }
  }
}

TEST_F(ExtractWorkersTest, AFailingWorkerStopsThePoolWithItsReason) {
  auto pool = ExtractPool::Open(Config(root_ / "c", {"cpu", "cpu"}));
  ND_ASSERT_OK(pool);
  ImageBatch bad = MakeBatch(0, {0, 1});
  bad.tensor.resize(bad.tensor.size() / 2);  // half the pixels missing
  ND_ASSERT_OK((*pool)->Submit(std::move(bad)));
  ReadyBatch ready;
  StatusOr<ExtractPool::Event> event = ExtractPool::Event::kTimeout;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (event.ok() && *event == ExtractPool::Event::kTimeout &&
         std::chrono::steady_clock::now() < deadline) {
    event = (*pool)->Next(100, &ready);
  }
  ASSERT_FALSE(event.ok());
  EXPECT_EQ(event.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(event.status().message().find("extract worker "), std::string::npos)
      << event.status().ToString();
  EXPECT_NE(event.status().message().find(" of 2 (cpu): extract: batch 0 carries"),
            std::string::npos)
      << event.status().ToString();
  // Later submissions get the same error instead of blocking.
  EXPECT_EQ((*pool)->Submit(MakeBatch(1, {2})).code(), StatusCode::kInvalidArgument);
}

TEST_F(ExtractWorkersTest, UnknownDeviceInTheListNamesItsWorker) {
  auto pool = ExtractPool::Open(Config(root_ / "c", {"cpu", "tpu"}));
  ASSERT_FALSE(pool.ok());
  EXPECT_NE(pool.status().message().find("extract worker 2 of 2 (tpu)"), std::string::npos)
      << pool.status().ToString();
  EXPECT_NE(pool.status().message().find("device 'tpu'"), std::string::npos)
      << pool.status().ToString();
}

// --- End to end: nd-pipeline up with two CPU devices ---------------------------------------

using ShResult = nd_e2e::Result;
using nd_e2e::Read;
using nd_e2e::Sh;

TEST_F(ExtractWorkersTest, UpWithTwoCpuDevicesGivesTheSameTallyAsOne) {
  const std::string bin = ND_BIN_DIR;
  ShResult gen = Sh(bin + "/nd-make-broden --out " + (root_ / "broden").string() +
                    " --images 30 --seed 4 --size 64");
  ASSERT_EQ(gen.code, 0) << gen.output;
  auto up = [&](const std::string& name, const std::string& device) {
    const fs::path dir = root_ / name;
    fs::create_directories(dir);
    std::ofstream(dir / "pipeline.toml")
        << "[dataset]\npath = \"" << (root_ / "broden").string() << "\"\n"
        << "[model]\npath = \"" << ResNet() << "\"\nlayers = [\"layer3\", \"layer4\"]\n"
        << "input_size = 64\nbatch_size = 7\ndevice = " << device << "\n"
        << "[cache]\ndir = \"" << (dir / "cache").string() << "\"\n"
        << "[output]\ndir = \"" << (dir / "out").string() << "\"\n"
        << "[run]\ntimeout_s = 60\n";
    return Sh(bin + "/nd-pipeline up -c " + (dir / "pipeline.toml").string());
  };
  ShResult one = up("one", "\"cpu\"");
  ASSERT_EQ(one.code, 0) << one.output;
  ShResult two = up("two", "[\"cpu\", \"cpu\"]");
  ASSERT_EQ(two.code, 0) << two.output;
  for (const char* layer : {"layer3", "layer4"}) {
    const std::string t1 = Read(root_ / "one" / "out" / layer / "tally.csv");
    const std::string t2 = Read(root_ / "two" / "out" / layer / "tally.csv");
    ASSERT_FALSE(t1.empty()) << layer;
    // A header and one row per unit (layer3: 256 units, layer4: 512).
    EXPECT_EQ(std::count(t1.begin(), t1.end(), '\n'), std::string(layer) == "layer3" ? 257 : 513);
    EXPECT_EQ(t1, t2) << layer;
    const std::string s2 = Read(root_ / "two" / "out" / layer / "summary.json");
    EXPECT_NE(s2.find("\"forward_images\": 30"), std::string::npos) << s2;
  }
  // The two-worker run's extract log says it ran two workers.
  EXPECT_NE(two.output.find("worker 2 of 2"), std::string::npos) << two.output;
}

}  // namespace
}  // namespace nd
