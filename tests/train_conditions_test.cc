// Tests of nd-train's training conditions (tools/train): the random-initialisation baseline
// (--epochs 0), the task (--task object|texture), fine-tuning (--init-from), the geometric
// checkpoint schedule and the training records (train_record.h). Expected values come from hand
// computation, from index.csv read here, or from the saved files themselves run through plain
// LibTorch, never from the trainer's own report.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/testing/broden_fixture.h"
#include "tests/testing/files.h"
#include "tests/testing/status_assertions.h"
#include "tools/make_broden/broden_generator.h"
#include "tools/make_broden/synth_labels.h"
#include "tools/train/model_builder.h"
#include "tools/train/train_record.h"
#include "tools/train/trainer.h"

namespace nd {
namespace {

using ::nd::testing::ReadAll;

namespace fs = std::filesystem;

std::vector<std::string> Words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// name → tensor for every parameter and buffer of a module.
std::map<std::string, torch::Tensor> Tensors(const torch::jit::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters(true)) out[p.name] = p.value;
  for (const auto& b : m.named_buffers(true)) out[b.name] = b.value;
  return out;
}

// Fraction of x that the saved model at `path` classifies as y: eval mode, one image at a time.
double BruteForceAccuracy(const std::string& path, const torch::Tensor& x, const torch::Tensor& y) {
  torch::jit::Module m = torch::jit::load(path);
  m.eval();
  torch::NoGradGuard no_grad;
  int64_t correct = 0;
  for (int64_t i = 0; i < x.size(0); ++i) {
    const torch::Tensor logits = m.forward({x.slice(0, i, i + 1)}).toTensor();
    correct += logits.argmax(1).item<int64_t>() == y[i].item<int64_t>() ? 1 : 0;
  }
  return static_cast<double>(correct) / static_cast<double>(x.size(0));
}

// sha256sum(1) of a file: an implementation other than the project's.
std::string Sha256Sum(const std::string& path) {
  FILE* p = popen(("sha256sum '" + path + "'").c_str(), "r");
  if (p == nullptr) return "";
  char buf[65] = {};
  const size_t n = fread(buf, 1, 64, p);
  pclose(p);
  return std::string(buf, n);
}

TEST(GeometricCheckpointsTest, RoundedPowersFromOneToTheLastIteration) {
  // r = 16^(1/4) = 2.
  EXPECT_EQ(GeometricCheckpoints(16, 5), (std::vector<int64_t>{1, 2, 4, 8, 16}));
  // r = 10: 1, 10, 100, 1000.
  EXPECT_EQ(GeometricCheckpoints(1000, 4), (std::vector<int64_t>{1, 10, 100, 1000}));
  // r = 100^(1/4) = 3.1623: 1, 3.16, 10, 31.6, 100.
  EXPECT_EQ(GeometricCheckpoints(100, 5), (std::vector<int64_t>{1, 3, 10, 32, 100}));
  // r = 10^(1/7) = 1.3895: 1, 1.39, 1.93, 2.68, 3.73, 5.18, 7.20, 10 — the second 1 is dropped.
  EXPECT_EQ(GeometricCheckpoints(10, 8), (std::vector<int64_t>{1, 2, 3, 4, 5, 7, 10}));
  EXPECT_EQ(GeometricCheckpoints(1, 5), (std::vector<int64_t>{1}));
  EXPECT_EQ(GeometricCheckpoints(2, 2), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(GeometricCheckpoints(0, 5).empty());
  // The paper's 21 snapshots up to 2.4M iterations: first and last exact, increasing.
  const std::vector<int64_t> paper = GeometricCheckpoints(2400000, 21);
  ASSERT_EQ(paper.size(), 21u);
  EXPECT_EQ(paper.front(), 1);
  EXPECT_EQ(paper.back(), 2400000);
  EXPECT_EQ(paper[1], 2);  // r = 2.4e6^(1/20) = 2.0845
  EXPECT_EQ(paper[2], 4);  // 4.345
}

// The alexnet's final classifier is the Linear sized by num_classes.
TEST(ClassifierNameTest, NamesTheLayerSizedByTheClasses) {
  for (const char* arch : {"resnet", "alexnet"}) {
    for (bool dropout : {false, true}) {
      ModelSpec spec;
      spec.arch = arch;
      spec.width = 2;
      spec.dropout = dropout;
      spec.num_classes = 7;  // no other layer has 7 outputs
      torch::manual_seed(1);
      auto m = BuildModel(spec);
      ND_ASSERT_OK(m);
      std::string sized;
      for (const auto& p : m->named_parameters(true)) {
        if (p.value.dim() == 2 && p.value.size(0) == 7) sized = p.name;
      }
      EXPECT_EQ(sized, ClassifierName(spec) + ".weight") << arch << " dropout " << dropout;
    }
  }
}

TEST(TrainConditionFlagsTest, ParsesTheNewFlags) {
  bool help = false;
  auto o = ParseTrainArgs(Words("--data d --out m.pt --task object --epochs 0 "
                                "--checkpoint-schedule geometric --checkpoints 21"),
                          &help);
  ND_ASSERT_OK(o);
  EXPECT_EQ(o->task, "object");
  EXPECT_EQ(o->epochs, 0);
  EXPECT_EQ(o->checkpoint_schedule, "geometric");
  EXPECT_EQ(o->checkpoints, 21);
  auto d = ParseTrainArgs(Words("--data d --out m.pt"), &help);
  ND_ASSERT_OK(d);
  EXPECT_EQ(d->task, "scene");
  EXPECT_EQ(d->checkpoint_schedule, "every");
  EXPECT_TRUE(d->init_from.empty());
}

TEST(TrainConditionFlagsTest, BadFlagsGiveOneLineErrorsNamingTheFlag) {
  auto error = [](const std::string& extra) {
    bool help = false;
    auto o = ParseTrainArgs(Words("--data d --out m.pt " + extra), &help);
    EXPECT_FALSE(o.ok()) << extra;
    const std::string m = o.ok() ? std::string() : o.status().message();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    return m;
  };
  EXPECT_EQ(error("--task animals"), "--task: 'animals' is not one of scene, object, texture");
  EXPECT_EQ(error("--epochs -1"), "--epochs: must be in 0..100000, got -1");
  EXPECT_EQ(error("--checkpoint-schedule log"),
            "--checkpoint-schedule: 'log' is not one of every, geometric");
  EXPECT_EQ(error("--checkpoint-schedule geometric"),
            "--checkpoints: --checkpoint-schedule geometric needs N >= 2 checkpoints, got 0");
  EXPECT_EQ(error("--checkpoint-schedule geometric --checkpoints 1"),
            "--checkpoints: --checkpoint-schedule geometric needs N >= 2 checkpoints, got 1");
  EXPECT_EQ(error("--checkpoints 5"), "--checkpoints: only with --checkpoint-schedule geometric");
  EXPECT_EQ(error("--checkpoint-schedule geometric --checkpoints 3 --checkpoint-every 2"),
            "--checkpoint-every: not with --checkpoint-schedule geometric (use --checkpoints N)");
  EXPECT_EQ(error("--init-from /nonexistent_nd_dir/m.pt"),
            "--init-from /nonexistent_nd_dir/m.pt: no such file");
}

// Two-class images (dark vs. bright, 32 px) with known counts: 64 training images in batches of
// 8 are 8 iterations per epoch. The classes are unbalanced (1 in 3 is bright), so a network that
// answers one class everywhere scores neither 0.5 nor its complement.
TrainingImages EasyImages() {
  torch::manual_seed(11);
  TrainingImages easy;
  easy.class_names = {"dark", "bright"};
  easy.class_labels = {1, 2};
  easy.train_y = (torch::arange(64, torch::kLong) % 3 == 0).to(torch::kLong);
  easy.train_x = (easy.train_y.to(torch::kFloat) * 2 - 1).view({64, 1, 1, 1}) +
                 0.8 * torch::randn({64, 3, 32, 32});
  easy.val_y = (torch::arange(16, torch::kLong) % 3 == 0).to(torch::kLong);
  easy.val_x = (easy.val_y.to(torch::kFloat) * 2 - 1).view({16, 1, 1, 1}) +
               0.8 * torch::randn({16, 3, 32, 32});
  return easy;
}

class TrainConditionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    root_ = fs::path(::testing::TempDir()) /
            ("nd_train_conditions_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  TrainOptions Options(const std::string& out) const {
    TrainOptions o;
    o.data_dir = (root_ / "data").string();
    o.out_path = (root_ / out).string();
    o.model.width = 4;
    o.model.batchnorm = false;
    o.epochs = 1;
    o.seed = 5;
    o.input_size = 32;
    o.batch_size = 8;
    o.threads = 2;
    return o;
  }

  fs::path root_;
};

TEST_F(TrainConditionsTest, GeometricCheckpointsHaveRecordsMeasuredAtThatIteration) {
  const TrainingImages easy = EasyImages();
  TrainOptions o = Options("geo.pt");
  o.epochs = 2;  // 16 iterations
  o.checkpoint_schedule = "geometric";
  o.checkpoints = 5;  // r = 2: 1, 2, 4, 8, 16
  auto report = TrainOn(easy, o);
  ND_ASSERT_OK(report);
  const std::vector<int64_t> expected = {1, 2, 4, 8, 16};
  ASSERT_EQ(report->checkpoints.size(), expected.size());
  for (int64_t i = 1; i <= 16; ++i) {
    const bool want = std::find(expected.begin(), expected.end(), i) != expected.end();
    EXPECT_EQ(fs::exists(o.out_path + ".ckpt-" + std::to_string(i) + ".pt"), want) << i;
    EXPECT_EQ(fs::exists(o.out_path + ".ckpt-" + std::to_string(i) + ".json"), want) << i;
  }
  auto records = ListTrainRecords(o.out_path);
  ND_ASSERT_OK(records);
  ASSERT_EQ(records->size(), 6u);  // five checkpoints, then the final model
  for (size_t k = 0; k < records->size(); ++k) {
    const TrainRecord& r = (*records)[k];
    const bool final = k == 5;
    const int64_t iteration = final ? 16 : expected[k];
    const std::string model =
        final ? o.out_path : o.out_path + ".ckpt-" + std::to_string(iteration) + ".pt";
    SCOPED_TRACE(r.path);
    EXPECT_EQ(r.final, final);
    EXPECT_EQ(r.model, fs::path(model).filename().string());
    EXPECT_EQ(r.iteration, iteration);
    EXPECT_EQ(r.total_iterations, 16);
    EXPECT_DOUBLE_EQ(r.epoch, iteration / 8.0);
    EXPECT_DOUBLE_EQ(r.train_accuracy, BruteForceAccuracy(model, easy.train_x, easy.train_y));
    EXPECT_DOUBLE_EQ(r.val_accuracy, BruteForceAccuracy(model, easy.val_x, easy.val_y));
    EXPECT_EQ(r.train_images, 64);
    EXPECT_EQ(r.val_images, 16);
    EXPECT_EQ(r.task, "scene");
    EXPECT_EQ(r.classes, (std::vector<std::string>{"dark", "bright"}));
    EXPECT_EQ(r.class_labels, (std::vector<int>{1, 2}));
    EXPECT_EQ(r.seed, 5u);
    EXPECT_EQ(r.init_from, "");
    // Every option, back from the file.
    EXPECT_EQ(r.options.out_path, o.out_path);
    EXPECT_EQ(r.options.data_dir, o.data_dir);
    EXPECT_EQ(r.options.model.width, 4);
    EXPECT_FALSE(r.options.model.batchnorm);
    EXPECT_EQ(r.options.epochs, 2);
    EXPECT_EQ(r.options.input_size, 32);
    EXPECT_EQ(r.options.batch_size, 8);
    EXPECT_EQ(r.options.lr, o.lr);
    EXPECT_EQ(r.options.checkpoint_schedule, "geometric");
    EXPECT_EQ(r.options.checkpoints, 5);
    EXPECT_EQ(r.options.threads, 2);
    EXPECT_TRUE(r.options.flip);
  }
  // The accuracy measurements draw no random numbers: the same run without checkpoints ends with
  // the same bytes.
  TrainOptions plain = Options("plain.pt");
  plain.epochs = 2;
  ND_ASSERT_OK(TrainOn(easy, plain));
  EXPECT_EQ(ReadAll(plain.out_path), ReadAll(o.out_path));
}

TEST_F(TrainConditionsTest, EpochsZeroSavesTheSeedsInitialisationMeasured) {
  const TrainingImages easy = EasyImages();
  TrainOptions o = Options("init.pt");
  o.epochs = 0;
  o.seed = 7;
  o.model.batchnorm = true;
  o.model.dropout = true;
  auto report = TrainOn(easy, o);
  ND_ASSERT_OK(report);
  EXPECT_TRUE(report->iteration_loss.empty());

  ModelSpec spec = o.model;
  spec.num_classes = 2;
  torch::manual_seed(7);
  auto fresh = BuildModel(spec);
  ND_ASSERT_OK(fresh);
  const auto want = Tensors(*fresh);
  const auto got = Tensors(torch::jit::load(o.out_path));
  ASSERT_EQ(got.size(), want.size());
  for (const auto& [name, t] : want) {
    ASSERT_EQ(got.count(name), 1u) << name;
    EXPECT_TRUE(torch::equal(got.at(name), t)) << name;
  }
  auto r = ReadTrainRecord(o.out_path + ".json");
  ND_ASSERT_OK(r);
  EXPECT_TRUE(r->final);
  EXPECT_EQ(r->iteration, 0);
  EXPECT_EQ(r->total_iterations, 0);
  EXPECT_EQ(r->epoch, 0.0);
  EXPECT_EQ(r->options.epochs, 0);
  EXPECT_DOUBLE_EQ(r->train_accuracy, BruteForceAccuracy(o.out_path, easy.train_x, easy.train_y));
  EXPECT_DOUBLE_EQ(r->val_accuracy, BruteForceAccuracy(o.out_path, easy.val_x, easy.val_y));
}

// A generated dataset (~14 texture images of 48) for the texture task and fine-tuning.
class GeneratedDatasetTest : public TrainConditionsTest {
 protected:
  void SetUp() override {
    TrainConditionsTest::SetUp();
    BrodenGeneratorOptions g;
    g.out_dir = (root_ / "data").string();
    g.num_images = 48;
    g.seed = 4;
    g.image_size = 32;
    g.texture_fraction = 0.3;
    g.threads = 2;
    ND_ASSERT_OK(BrodenGenerator(g).Run());
  }

  // index.csv's rows as cell lists, header first (the generator quotes nothing).
  std::vector<std::vector<std::string>> IndexRows() const {
    std::ifstream in(root_ / "data" / "index.csv");
    std::vector<std::vector<std::string>> rows;
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::vector<std::string> cells;
      std::stringstream cells_in(line);
      for (std::string cell; std::getline(cells_in, cell, ',');) cells.push_back(cell);
      if (!line.empty() && line.back() == ',') cells.push_back("");
      rows.push_back(cells);
    }
    return rows;
  }
};

TEST_F(GeneratedDatasetTest, TextureTaskClassifiesTheTextureLabel) {
  TrainOptions o = Options("texture.pt");
  o.task = "texture";
  auto data = LoadTrainingImages(o);
  ND_ASSERT_OK(data);
  EXPECT_EQ(data->class_names, (std::vector<std::string>{"striped", "dotted", "chequered",
                                                         "zigzagged", "grid", "crosshatched"}));
  ASSERT_EQ(data->class_labels.size(), 6u);
  EXPECT_EQ(data->class_labels[0], synth::kStriped);
  EXPECT_EQ(data->class_labels[5], synth::kCrosshatched);

  const auto rows = IndexRows();
  ASSERT_GT(rows.size(), 1u);
  const auto& header = rows[0];
  const size_t texture = std::find(header.begin(), header.end(), "texture") - header.begin();
  const size_t split = std::find(header.begin(), header.end(), "split") - header.begin();
  ASSERT_LT(texture, header.size());
  std::vector<int64_t> train_y, val_y;
  int64_t skipped = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const std::string& cell = rows[i][texture];
    if (cell.empty()) {
      ++skipped;
      continue;
    }
    const int64_t label = std::stoi(cell.substr(0, cell.find(';')));
    (rows[i][split] == "val" ? val_y : train_y).push_back(label - synth::kStriped);
  }
  ASSERT_GE(train_y.size(), 2u);
  EXPECT_EQ(data->skipped_unlabelled, skipped);
  const auto as_vector = [](const torch::Tensor& t) {
    return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
  };
  EXPECT_EQ(as_vector(data->train_y), train_y);
  EXPECT_EQ(as_vector(data->val_y), val_y);
  EXPECT_EQ(data->train_x.size(0), static_cast<int64_t>(train_y.size()));
  EXPECT_EQ(data->task, "texture");
}

TEST_F(GeneratedDatasetTest, InitFromCopiesAllButTheClassifierAndRecordsTheSource) {
  // The source: a scene model (9 classes), one epoch.
  TrainOptions src = Options("scene.pt");
  src.model.batchnorm = true;
  ND_ASSERT_OK(Train(src));

  // Fine-tuned for textures (6 classes) with another seed; epochs 0 keeps the copy observable.
  bool help = false;
  auto parsed =
      ParseTrainArgs({"--data", src.data_dir, "--out", (root_ / "tuned.pt").string(), "--task",
                      "texture", "--init-from", src.out_path, "--epochs", "0", "--seed", "9",
                      "--input-size", "32", "--batch-size", "8", "--threads", "2"},
                     &help);
  ND_ASSERT_OK(parsed);
  const TrainOptions& o = *parsed;
  EXPECT_EQ(o.model.width, 4);  // from the source, not the default 32
  EXPECT_TRUE(o.model.batchnorm);
  ND_ASSERT_OK(Train(o));

  const auto source = Tensors(torch::jit::load(src.out_path));
  torch::jit::ExtraFilesMap extra{{"nd_train.json", ""}};
  const auto tuned = Tensors(torch::jit::load(o.out_path, torch::kCPU, extra));
  ModelSpec spec = o.model;
  spec.num_classes = 6;
  torch::manual_seed(9);
  auto fresh_module = BuildModel(spec);
  ND_ASSERT_OK(fresh_module);
  const auto fresh = Tensors(*fresh_module);
  ASSERT_EQ(tuned.size(), source.size());
  for (const auto& [name, t] : tuned) {
    if (name.rfind("fc.", 0) == 0) {
      EXPECT_EQ(t.size(0), 6) << name;
      EXPECT_TRUE(torch::equal(t, fresh.at(name))) << name;
    } else {
      EXPECT_TRUE(torch::equal(t, source.at(name))) << name;
      EXPECT_FALSE(torch::equal(t, fresh.at(name))) << name << " was not copied";
    }
  }
  EXPECT_EQ(source.at("fc.weight").size(0), 9);

  const std::string sha = Sha256Sum(src.out_path);
  ASSERT_EQ(sha.size(), 64u);
  EXPECT_NE(extra["nd_train.json"].find("\"init_from_sha256\": \"" + sha + "\""), std::string::npos)
      << extra["nd_train.json"];
  EXPECT_NE(extra["nd_train.json"].find("\"task\": \"texture\""), std::string::npos);
  auto record = ReadTrainRecord(o.out_path + ".json");
  ND_ASSERT_OK(record);
  EXPECT_EQ(record->init_from, src.out_path);
  EXPECT_EQ(record->init_from_sha256, sha);
  EXPECT_EQ(record->task, "texture");
  EXPECT_EQ(record->classes.size(), 6u);
  // The source's description has neither optional key (a default run's bytes are unchanged).
  torch::jit::ExtraFilesMap src_extra{{"nd_train.json", ""}};
  torch::jit::load(src.out_path, torch::kCPU, src_extra);
  EXPECT_EQ(src_extra["nd_train.json"].find("\"task\""), std::string::npos);
  EXPECT_EQ(src_extra["nd_train.json"].find("\"init_from"), std::string::npos);

  // Architecture flags may repeat the source's, not contradict it.
  auto args = [&](const std::string& extra_flags) {
    return Words("--data " + src.data_dir + " --out " + (root_ / "x.pt").string() +
                 " --init-from " + src.out_path + " " + extra_flags);
  };
  ND_EXPECT_OK(ParseTrainArgs(args("--width 4 --arch resnet --batchnorm on"), &help));
  auto bad = ParseTrainArgs(args("--width 8"), &help);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--width: 8 conflicts with --init-from " + src.out_path +
                                        " (width 4); the architecture comes from the model");
  bad = ParseTrainArgs(args("--batchnorm off"), &help);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "--batchnorm: off conflicts with --init-from " + src.out_path +
                                        " (batchnorm on); the architecture comes from the model");
  // Through the library: options that do not match the source are refused before training.
  TrainOptions wrong = o;
  wrong.model.width = 8;
  wrong.out_path = (root_ / "wrong.pt").string();
  auto refused = Train(wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--init-from " + src.out_path + ": the model is"),
            std::string::npos)
      << refused.status().message();
  EXPECT_FALSE(fs::exists(wrong.out_path));
}

// The object task on a hand-made dataset (tests/testing/broden_fixture.h's CSVs, own index.csv):
// per row, the c_object.csv label with the most pixels summed over all its object layers.
class ObjectTaskTest : public broden_testing::BrodenDatasetTest {};

TEST_F(ObjectTaskTest, ClassIsTheMajorityObjectLabelOverAllObjectLayers) {
  // Labels: sky 1, tree 2, wheel 3 (in c_object.csv, primary part), car 4, door 5 (part only).
  files_["index.csv"] =
      "scene,image,ih,iw,sh,sw,split,object,part\r\n"
      "6,ade/a.jpg,8,8,4,4,train,ade/a_object.png,\r\n"
      "6,ade/b.jpg,8,8,4,4,val,ade/b_object.png,\r\n"
      ",dtd/c.jpg,8,8,4,4,train,,\r\n"
      "6,ade/d.jpg,8,8,4,4,train,ade/d_object_1.png;ade/d_object_2.png,\r\n"
      "6,ade/e.jpg,8,8,4,4,train,ade/e_object.png,\r\n";
  pngs_ = {
      // car 6, wheel 4, sky 2 → car.
      {"ade/a_object.png", {4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 1, 1, 0, 0, 0, 0}},
      // wheel 5, car 5, sky 3 → a tie: the lower number, wheel.
      {"ade/b_object.png", {3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 1, 1, 1, 0, 0, 0}},
      // car 6, tree 5 here, tree 3 in the second layer: tree 8 > car 6 → tree.
      {"ade/d_object_1.png", {4, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0}},
      {"ade/d_object_2.png", {2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
      // Only door, which has no c_object.csv row: no object pixel → skipped.
      {"ade/e_object.png", {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0, 0, 0, 0, 0, 0}},
  };
  WriteDataset();
  for (const char* image : {"ade/a.jpg", "ade/b.jpg", "ade/d.jpg", "ade/e.jpg", "dtd/c.jpg"}) {
    const fs::path path = fs::path(root_) / "images" / image;
    fs::create_directories(path.parent_path());
    ASSERT_TRUE(cv::imwrite(path.string(), cv::Mat(8, 8, CV_8UC3, cv::Scalar(30, 90, 200))));
  }
  TrainOptions o;
  o.data_dir = root_;
  o.out_path = (fs::path(root_) / "m.pt").string();
  o.task = "object";
  o.input_size = 32;
  o.threads = 2;
  auto data = LoadTrainingImages(o);
  ND_ASSERT_OK(data);
  // Classes in label-number order (c_object.csv lists car before wheel); sky is never a class.
  EXPECT_EQ(data->class_names, (std::vector<std::string>{"tree", "wheel", "car"}));
  EXPECT_EQ(data->class_labels, (std::vector<int>{2, 3, 4}));
  // Training rows in index.csv order: a (car = 2), d (tree = 0); validation: b (wheel = 1).
  ASSERT_EQ(data->train_y.numel(), 2);
  EXPECT_EQ(data->train_y[0].item<int64_t>(), 2);
  EXPECT_EQ(data->train_y[1].item<int64_t>(), 0);
  ASSERT_EQ(data->val_y.numel(), 1);
  EXPECT_EQ(data->val_y[0].item<int64_t>(), 1);
  EXPECT_EQ(data->skipped_unlabelled, 2);  // c (no object layer), e (no object pixel)
  EXPECT_EQ(data->train_x.sizes(), (std::vector<int64_t>{2, 3, 32, 32}));

  // The fixture has no texture category.
  o.task = "texture";
  auto none = LoadTrainingImages(o);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(),
            "--data " + root_ + ": category.csv has no 'texture' category (--task texture)");
}

TEST(TrainRecordTest, ReaderRefusesOtherFilesNamingThem) {
  const fs::path dir =
      fs::path(::testing::TempDir()) / ("nd_train_record_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  TrainRecord r;
  r.model = "m.pt";
  r.iteration = 3;
  r.total_iterations = 12;
  r.epoch = 0.75;
  r.train_accuracy = 0.1;
  r.classes = {"a, \"quoted\"", "b"};
  r.class_labels = {7, 9};
  r.options.lr = 0.1;
  const std::string good = (dir / "good.json").string();
  ND_ASSERT_OK(WriteTrainRecord(good, r));
  auto back = ReadTrainRecord(good);
  ND_ASSERT_OK(back);
  EXPECT_EQ(back->classes, r.classes);
  EXPECT_EQ(back->class_labels, r.class_labels);
  EXPECT_EQ(back->train_accuracy, 0.1);
  EXPECT_EQ(back->options.lr, 0.1);
  EXPECT_EQ(back->epoch, 0.75);

  const std::string other = (dir / "other.json").string();
  std::ofstream(other) << "{\"format\": \"something-else\"}\n";
  auto refused = ReadTrainRecord(other);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(),
            other + ": not an nd-train record (no \"format\": \"nd-train-record\")");

  std::string text = ReadAll(good);
  text.replace(text.find("\"seed\""), 6, "\"sead\"");
  std::ofstream((dir / "no_seed.json").string()) << text;
  refused = ReadTrainRecord((dir / "no_seed.json").string());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message().rfind((dir / "no_seed.json").string() + ": ", 0), 0u);
  EXPECT_NE(refused.status().message().find("seed"), std::string::npos);
  fs::remove_all(dir);
}

// The CLI: a bad --task is a one-line error (exit 2); --help lists the new flags.
TEST(TrainConditionsCommandLineTest, BadTaskAndHelp) {
  const std::string bin = std::string(ND_BIN_DIR) + "/nd-train";
  if (!fs::exists(bin)) GTEST_SKIP() << bin << " not built";
  const fs::path err =
      fs::path(::testing::TempDir()) / ("nd_train_conditions_cli_" + std::to_string(getpid()));
  const std::string cmd = bin + " --data d --out m.pt --task animals >/dev/null 2>" + err.string();
  const int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 2) << rc;
  EXPECT_EQ(ReadAll(err), "nd-train: --task: 'animals' is not one of scene, object, texture\n");
  const std::string help = bin + " --help >" + err.string();
  EXPECT_EQ(std::system(help.c_str()), 0);
  const std::string usage = ReadAll(err);
  for (const char* flag : {"--task", "--init-from", "--checkpoint-schedule", "--checkpoints"}) {
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  }
  fs::remove(err);
}

}  // namespace
}  // namespace nd
