// Tests of nd-train (tools/train): the networks it builds are ordinary TorchScript modules whose
// layers the pipeline's ModelRunner captures by module path; training learns, is deterministic
// for a seed and writes checkpoints; bad flags and a missing dataset give one-line errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "common/torch/model_runner.h"
#include "tests/testing/files.h"
#include "tests/testing/status_assertions.h"
#include "tools/make_broden/broden_generator.h"
#include "tools/train/model_builder.h"
#include "tools/train/trainer.h"

namespace nd {
namespace {

using ::nd::testing::ReadAll;

namespace fs = std::filesystem;

// "a b c" → {"a", "b", "c"}.
std::vector<std::string> Words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// One small generated dataset (64 px photos) for the whole suite, decoded once at 64 px.
class TrainTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    torch::set_num_threads(2);
    root_ = new fs::path(fs::path(::testing::TempDir()) /
                         ("nd_train_test_" + std::to_string(::getpid())));
    fs::remove_all(*root_);
    fs::create_directories(*root_);
    BrodenGeneratorOptions g;
    g.out_dir = (*root_ / "data").string();
    g.num_images = 80;
    g.seed = 3;
    g.image_size = 64;
    g.threads = 2;
    auto summary = BrodenGenerator(g).Run();
    ND_ASSERT_OK(summary);
    auto data = LoadTrainingImages(BaseOptions());
    ND_ASSERT_OK(data);
    data_ = new TrainingImages(std::move(data).value());
  }
  static void TearDownTestSuite() {
    delete data_;
    data_ = nullptr;
    if (root_ != nullptr) fs::remove_all(*root_);
    delete root_;
    root_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(data_, nullptr) << "the test dataset could not be generated or loaded";
  }

  // A tiny resnet: width 4 (layer4 has 32 units), input 64 (layer4 maps are 2x2).
  static TrainOptions BaseOptions() {
    TrainOptions o;
    o.data_dir = (*root_ / "data").string();
    o.out_path = (*root_ / "model.pt").string();
    o.model.width = 4;
    o.epochs = 1;
    o.seed = 5;
    o.input_size = 64;
    o.batch_size = 8;
    o.lr = 0.05;
    o.threads = 2;
    return o;
  }
  static std::string Out(const std::string& name) { return (*root_ / name).string(); }

  static fs::path* root_;
  static TrainingImages* data_;
};

fs::path* TrainTest::root_ = nullptr;
TrainingImages* TrainTest::data_ = nullptr;

TEST_F(TrainTest, LoadsTheNineScenesAndSkipsUnlabelledRows) {
  ASSERT_EQ(data_->class_names.size(), 9u);
  EXPECT_EQ(data_->class_names[0], "street-s");
  EXPECT_EQ(data_->class_names[8], "dining_room-s");
  // Texture images have no scene label: some rows are skipped, the rest split train/val.
  EXPECT_GT(data_->skipped_unlabelled, 0);
  EXPECT_EQ(data_->train_x.size(0) + data_->val_x.size(0) + data_->skipped_unlabelled, 80);
  EXPECT_GT(data_->val_x.size(0), 0);
  EXPECT_EQ(data_->train_x.sizes(), (std::vector<int64_t>{data_->train_y.size(0), 3, 64, 64}));
  EXPECT_GE(data_->train_y.min().item<int64_t>(), 0);
  EXPECT_LT(data_->train_y.max().item<int64_t>(), 9);
  // torchvision normalisation: roughly zero-centred values, not raw 0..255 bytes.
  EXPECT_LT(data_->train_x.abs().max().item<float>(), 3.0f);
}

TEST_F(TrainTest, LossDecreasesOverIterations) {
  TrainOptions o = BaseOptions();
  o.epochs = 6;
  o.out_path = Out("loss.pt");
  auto report = TrainOn(*data_, o);
  ND_ASSERT_OK(report);
  const std::vector<double>& loss = report->iteration_loss;
  ASSERT_GE(loss.size(), 12u);
  const size_t k = loss.size() / 4;
  const double first = std::accumulate(loss.begin(), loss.begin() + k, 0.0) / k;
  const double last = std::accumulate(loss.end() - k, loss.end(), 0.0) / k;
  EXPECT_LT(last, first * 0.9) << "mean loss of the first " << k << " iterations " << first
                               << ", of the last " << k << ": " << last;
  ASSERT_EQ(report->epochs.size(), 6u);
  EXPECT_EQ(report->epochs.back().iterations, static_cast<int64_t>(loss.size()));
  EXPECT_GT(report->parameters, 0);
}

// An easy two-class subset (dark vs. bright images): one epoch must separate it.
TEST_F(TrainTest, OneEpochLearnsAnEasySubsetWellAboveChance) {
  torch::manual_seed(11);
  TrainingImages easy;
  easy.class_names = {"dark", "bright"};
  easy.class_labels = {1, 2};
  const int64_t n = 64;
  easy.train_y = torch::arange(n, torch::kLong) % 2;
  const torch::Tensor shade = (easy.train_y.to(torch::kFloat) * 2 - 1).view({n, 1, 1, 1});
  easy.train_x = shade + 0.3 * torch::randn({n, 3, 32, 32});
  easy.val_y = torch::arange(16, torch::kLong) % 2;
  easy.val_x = (easy.val_y.to(torch::kFloat) * 2 - 1).view({16, 1, 1, 1}) +
               0.3 * torch::randn({16, 3, 32, 32});
  TrainOptions o = BaseOptions();
  o.input_size = 32;
  o.out_path = Out("easy.pt");
  // Without BatchNorm, eval mode computes what training saw: after 8 iterations BatchNorm's
  // running statistics would still lag behind the fast-moving weights.
  o.model.batchnorm = false;
  auto report = TrainOn(easy, o);
  ND_ASSERT_OK(report);
  EXPECT_EQ(report->iteration_loss.size(), 8u);
  EXPECT_GE(report->final_train_accuracy, 0.9);
  EXPECT_GE(report->final_val_accuracy, 0.9);
}

TEST_F(TrainTest, SavedResNetLoadsAndModelRunnerCapturesLayer4) {
  TrainOptions o = BaseOptions();
  o.out_path = Out("resnet.pt");
  auto report = TrainOn(*data_, o);
  ND_ASSERT_OK(report);
  EXPECT_FALSE(fs::exists(o.out_path + ".partial"));

  // Plain torch::jit::load, with the description saved next to the weights.
  torch::jit::ExtraFilesMap extra{{"nd_train.json", ""}};
  torch::jit::Module loaded = torch::jit::load(o.out_path, torch::kCPU, extra);
  EXPECT_FALSE(loaded.is_training());
  EXPECT_NE(extra["nd_train.json"].find("\"input_size\": 64"), std::string::npos);
  EXPECT_NE(extra["nd_train.json"].find("\"street-s\""), std::string::npos);
  const torch::Tensor x = data_->val_x.slice(0, 0, 2);
  const torch::Tensor logits = loaded.forward({x}).toTensor();
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, 9}));

  // The pipeline's capture by module path: layer3 (16 units, 4x4), layer4 (32 units, 2x2), fc.
  ModelOptions mo;
  mo.path = o.out_path;
  mo.layers = {"layer3", "layer4", "fc"};
  mo.device = "cpu";
  auto runner = ModelRunner::Load(mo);
  ND_ASSERT_OK(runner);
  const std::vector<std::string> paths = runner->ModulePaths();
  for (const char* p : {"conv1", "bn1", "layer1", "layer4", "layer4.0", "layer4.0.conv2",
                        "layer4.0.downsample.0", "avgpool", "fc"}) {
    EXPECT_NE(std::find(paths.begin(), paths.end(), p), paths.end()) << p;
  }
  auto acts = runner->Run(x);
  ND_ASSERT_OK(acts);
  ASSERT_EQ(acts->size(), 3u);
  EXPECT_EQ((*acts)[0].sizes(), (std::vector<int64_t>{2, 16, 4, 4}));
  EXPECT_EQ((*acts)[1].sizes(), (std::vector<int64_t>{2, 32, 2, 2}));
  // The last block ends with a ReLU.
  EXPECT_GE((*acts)[1].min().item<float>(), 0.0f);
  // The captured fc output is forward's result.
  EXPECT_TRUE(torch::allclose((*acts)[2].view({2, 9}), logits, 1e-5, 1e-5));
}

// The demo model's shape: layer4 with stride 1 keeps layer3's resolution; two blocks per stage
// are named layer<k>.0 and layer<k>.1.
TEST_F(TrainTest, LastStrideOneKeepsLayer4AtLayer3Resolution) {
  ModelSpec spec;
  spec.width = 4;
  spec.blocks = 2;
  spec.last_stride = 1;
  torch::manual_seed(1);
  auto module = BuildModel(spec);
  ND_ASSERT_OK(module);
  module->eval();
  module->save(Out("stride1.pt"));
  ModelOptions mo;
  mo.path = Out("stride1.pt");
  mo.layers = {"layer3", "layer4", "layer4.1.conv2"};
  mo.device = "cpu";
  auto runner = ModelRunner::Load(mo);
  ND_ASSERT_OK(runner);
  auto acts = runner->Run(data_->val_x.slice(0, 0, 2));
  ND_ASSERT_OK(acts);
  EXPECT_EQ((*acts)[0].sizes(), (std::vector<int64_t>{2, 16, 4, 4}));
  EXPECT_EQ((*acts)[1].sizes(), (std::vector<int64_t>{2, 32, 4, 4}));
  EXPECT_EQ((*acts)[2].sizes(), (std::vector<int64_t>{2, 32, 4, 4}));
  EXPECT_EQ(ConvLayerUnits(spec), (std::vector<int>{4, 8, 16, 32}));
  spec.last_stride = 3;
  EXPECT_FALSE(BuildModel(spec).ok());
}

TEST_F(TrainTest, SavedAlexNetLoadsAndModelRunnerCapturesFeatures) {
  TrainOptions o = BaseOptions();
  o.model.arch = "alexnet";
  o.model.dropout = true;
  o.out_path = Out("alexnet.pt");
  auto report = TrainOn(*data_, o);
  ND_ASSERT_OK(report);
  const std::vector<std::string> convs = ConvLayerNames(o.model);
  ASSERT_EQ(convs.size(), 5u);
  EXPECT_EQ(convs[4], "features.14");  // conv, bn, relu (+ pool) per conv
  ModelOptions mo;
  mo.path = o.out_path;
  mo.layers = {convs[4], "features.17", "classifier"};
  mo.device = "cpu";
  auto runner = ModelRunner::Load(mo);
  ND_ASSERT_OK(runner);
  auto acts = runner->Run(data_->val_x.slice(0, 0, 3));
  ND_ASSERT_OK(acts);
  // Input 64: conv 11/4 → 15, pool → 7, pool → 3, last pool → 1. 4W = 16 units.
  EXPECT_EQ((*acts)[0].sizes(), (std::vector<int64_t>{3, 16, 3, 3}));
  EXPECT_EQ((*acts)[1].sizes(), (std::vector<int64_t>{3, 16, 1, 1}));
  EXPECT_EQ((*acts)[2].sizes(), (std::vector<int64_t>{3, 9, 1, 1}));

  // Without batchnorm the numbering is torchvision's: conv5 is features.10.
  ModelSpec plain;
  plain.arch = "alexnet";
  plain.batchnorm = false;
  EXPECT_EQ(ConvLayerNames(plain),
            (std::vector<std::string>{"features.0", "features.3", "features.6", "features.8",
                                      "features.10"}));
}

TEST_F(TrainTest, SameSeedGivesBitIdenticalParameters) {
  TrainOptions o = BaseOptions();
  o.epochs = 2;
  o.out_path = Out("seed_a.pt");
  ND_ASSERT_OK(TrainOn(*data_, o));
  o.out_path = Out("seed_b.pt");
  ND_ASSERT_OK(TrainOn(*data_, o));
  o.seed = 6;
  o.out_path = Out("seed_c.pt");
  ND_ASSERT_OK(TrainOn(*data_, o));

  // The file's bytes depend on the network only, not on the --out name.
  EXPECT_EQ(ReadAll(Out("seed_a.pt")), ReadAll(Out("seed_b.pt")));
  const torch::jit::Module a = torch::jit::load(Out("seed_a.pt"));
  const torch::jit::Module b = torch::jit::load(Out("seed_b.pt"));
  const torch::jit::Module c = torch::jit::load(Out("seed_c.pt"));
  std::vector<torch::Tensor> pa, pb, pc;
  for (const auto& t : a.named_attributes()) {
    if (t.value.isTensor()) pa.push_back(t.value.toTensor());
  }
  for (const auto& t : b.named_attributes()) {
    if (t.value.isTensor()) pb.push_back(t.value.toTensor());
  }
  for (const auto& t : c.named_attributes()) {
    if (t.value.isTensor()) pc.push_back(t.value.toTensor());
  }
  ASSERT_EQ(pa.size(), pb.size());
  ASSERT_GT(pa.size(), 10u);  // parameters and BatchNorm running statistics
  bool all_equal_c = true;
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "tensor " << i;
    all_equal_c = all_equal_c && torch::equal(pa[i], pc[i]);
  }
  EXPECT_FALSE(all_equal_c) << "another seed gave the same network";
}

TEST_F(TrainTest, CheckpointEveryKIterations) {
  TrainOptions o = BaseOptions();
  o.out_path = Out("ckpt.pt");
  o.checkpoint_every = 2;
  o.epochs = 2;
  auto report = TrainOn(*data_, o);
  ND_ASSERT_OK(report);
  const int64_t iterations = static_cast<int64_t>(report->iteration_loss.size());
  ASSERT_GE(iterations, 4);
  std::vector<std::string> expected;
  for (int64_t i = 2; i <= iterations; i += 2) {
    expected.push_back(o.out_path + ".ckpt-" + std::to_string(i) + ".pt");
  }
  EXPECT_EQ(report->checkpoints, expected);
  for (int64_t i = 1; i <= iterations; ++i) {
    EXPECT_EQ(fs::exists(o.out_path + ".ckpt-" + std::to_string(i) + ".pt"), i % 2 == 0) << i;
  }
  // A checkpoint is a complete model.
  ModelOptions mo;
  mo.path = expected.front();
  mo.layers = {"layer4"};
  mo.device = "cpu";
  auto runner = ModelRunner::Load(mo);
  ND_ASSERT_OK(runner);
}

TEST(TrainFlagsTest, ParsesEveryOption) {
  bool help = true;
  auto o = ParseTrainArgs(
      Words("--data d --out=m.pt --arch alexnet --width 8 --blocks 2 --stem-pool off "
            "--last-stride 1 --batchnorm off --dropout on --epochs 3 --seed 9 --input-size 96 "
            "--batch-size 16 --lr 0.01 --optimizer adam --checkpoint-every 5 --threads 1 "
            "--preprocess netdissect --flip off"),
      &help);
  ND_ASSERT_OK(o);
  EXPECT_FALSE(help);
  EXPECT_EQ(o->data_dir, "d");
  EXPECT_EQ(o->out_path, "m.pt");
  EXPECT_EQ(o->model.arch, "alexnet");
  EXPECT_EQ(o->model.width, 8);
  EXPECT_EQ(o->model.blocks, 2);
  EXPECT_FALSE(o->model.stem_pool);
  EXPECT_EQ(o->model.last_stride, 1);
  EXPECT_FALSE(o->model.batchnorm);
  EXPECT_TRUE(o->model.dropout);
  EXPECT_EQ(o->epochs, 3);
  EXPECT_EQ(o->seed, 9u);
  EXPECT_EQ(o->input_size, 96);
  EXPECT_EQ(o->batch_size, 16);
  EXPECT_DOUBLE_EQ(o->lr, 0.01);
  EXPECT_EQ(o->optimizer, "adam");
  EXPECT_EQ(o->checkpoint_every, 5);
  EXPECT_EQ(o->threads, 1);
  EXPECT_EQ(o->preprocess, "netdissect");
  EXPECT_FALSE(o->flip);
  ND_ASSERT_OK(ParseTrainArgs({"--help"}, &help));
  EXPECT_TRUE(help);
}

TEST(TrainFlagsTest, BadFlagsGiveOneLineErrorsNamingTheFlag) {
  const std::vector<std::string> base = {"--data", "d", "--out", "m.pt"};
  auto error = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    bool help = false;
    auto o = ParseTrainArgs(args, &help);
    EXPECT_FALSE(o.ok());
    const std::string m = o.ok() ? std::string() : o.status().message();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    return m;
  };
  EXPECT_EQ(error({"--arch", "vgg"}), "--arch: 'vgg' is not one of resnet, alexnet");
  EXPECT_EQ(error({"--width", "0"}), "--width: must be in 1..512, got 0");
  EXPECT_EQ(error({"--last-stride", "3"}), "--last-stride: must be in 1..2, got 3");
  EXPECT_EQ(error({"--epochs", "x"}), "--epochs: 'x' is not an integer");
  EXPECT_EQ(error({"--batchnorm", "yes"}), "--batchnorm: 'yes' is not on or off");
  EXPECT_EQ(error({"--lr", "-1"}), "--lr: must be > 0, got -1");
  EXPECT_EQ(error({"--batch-size", "1"}), "--batch-size: must be in 2..65536, got 1");
  EXPECT_EQ(error({"--optimizer", "rmsprop"}), "--optimizer: 'rmsprop' is not one of sgd, adam");
  EXPECT_EQ(error({"--bogus", "1"}), "unknown option '--bogus' (see --help)");
  EXPECT_EQ(error({"--bogus"}), "unknown option '--bogus' (see --help)");
  EXPECT_EQ(error({"--seed"}), "--seed needs a value");
  bool help = false;
  auto missing = ParseTrainArgs({"--out", "m.pt"}, &help);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "--data DIR is required (see --help)");
}

TEST(TrainFlagsTest, MissingDatasetIsAOneLineErrorNamingIt) {
  TrainOptions o;
  o.data_dir = (fs::path(::testing::TempDir()) / "nd_train_no_such_dataset").string();
  o.out_path = (fs::path(::testing::TempDir()) / "nd_train_unused.pt").string();
  auto report = Train(o);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(report.status().message(), "--data " + o.data_dir + ": no such directory");
  EXPECT_FALSE(fs::exists(o.out_path));

  o.data_dir =
      (fs::path(::testing::TempDir()) / ("nd_train_empty_" + std::to_string(getpid()))).string();
  fs::create_directories(o.data_dir);
  report = Train(o);
  fs::remove_all(o.data_dir);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().message(),
            "--data " + o.data_dir + ": not a Broden dataset (no index.csv)");

  o.out_path = "/nonexistent_nd_dir/model.pt";
  report = Train(o);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("/nonexistent_nd_dir does not exist"), std::string::npos)
      << report.status().message();
}

// The CLI, as users run it. Skipped when the executable has not been built.
TEST(TrainCommandLineTest, ExitCodesAndOneLineErrors) {
  const std::string bin = std::string(ND_BIN_DIR) + "/nd-train";
  if (!fs::exists(bin)) GTEST_SKIP() << bin << " not built";
  const fs::path out =
      fs::path(::testing::TempDir()) / ("nd_train_cli_" + std::to_string(getpid()));
  // stdout (progress) is dropped; stderr holds the error line.
  auto run = [&](const std::string& args) {
    const std::string cmd = bin + " " + args + " >/dev/null 2>" + out.string();
    const int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  EXPECT_EQ(run("--data /nonexistent --out m.pt --width abc"), 2);
  EXPECT_EQ(ReadAll(out), "nd-train: --width: 'abc' is not an integer\n");
  EXPECT_EQ(run("--data /nonexistent_nd_data --out " +
                (fs::path(::testing::TempDir()) / "m.pt").string()),
            1);
  const std::string msg = ReadAll(out);
  EXPECT_EQ(msg.rfind("nd-train: --data /nonexistent_nd_data: ", 0), 0u) << msg;
  EXPECT_EQ(std::count(msg.begin(), msg.end(), '\n'), 1) << msg;
  const std::string help_cmd = bin + " --help >" + out.string() + " 2>&1";
  EXPECT_EQ(std::system(help_cmd.c_str()), 0);
  EXPECT_NE(ReadAll(out).find("--checkpoint-every"), std::string::npos);
  fs::remove(out);
}

}  // namespace
}  // namespace nd
