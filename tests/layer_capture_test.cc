// Tests for ModelRunner and the layer capture of stages/extract against activations computed in
// Python with forward hooks on the eager model (tests/fixtures/make_test_models.py).
#include "common/torch/layer_capture.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/torch/model_runner.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

std::string FixtureDir() {
  const char* dir = std::getenv("ND_TEST_MODELS_DIR");
  return dir != nullptr ? dir : ND_TEST_MODELS_DIR;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// refs.txt: "<file> <d0> <d1> ..." per line; the files hold raw little-endian float32.
class References {
 public:
  References() {
    std::ifstream in(FixtureDir() + "/refs.txt");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string file;
      fields >> file;
      std::vector<int64_t> shape;
      int64_t d;
      while (fields >> d) shape.push_back(d);
      shapes_[file] = shape;
    }
  }
  bool empty() const { return shapes_.empty(); }
  torch::Tensor Load(const std::string& file) const {
    auto it = shapes_.find(file);
    if (it == shapes_.end()) {
      ADD_FAILURE() << "no reference " << file << " in refs.txt";
      return torch::Tensor();
    }
    const std::string bytes = ReadBytes(FixtureDir() + "/" + file);
    const torch::Tensor t = torch::empty(it->second, torch::kFloat);
    if (bytes.size() != static_cast<size_t>(t.numel()) * sizeof(float)) {
      ADD_FAILURE() << file << ": " << bytes.size() << " bytes, expected " << t.numel() * 4;
      return torch::Tensor();
    }
    std::memcpy(t.data_ptr<float>(), bytes.data(), bytes.size());
    return t;
  }

 private:
  std::map<std::string, std::vector<int64_t>> shapes_;
};

class LayerCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(2);
    ASSERT_FALSE(refs_.empty()) << "no fixtures in " << FixtureDir()
                                << "; run ctest (make_test_models sets them up)";
  }
  std::string Model(const std::string& name) const { return FixtureDir() + "/" + name; }

  StatusOr<ModelRunner> LoadModel(const std::string& name, std::vector<std::string> layers) {
    ModelOptions options;
    options.path = Model(name);
    options.layers = std::move(layers);
    options.device = "cpu";
    return ModelRunner::Load(options);
  }

  // Runs `model` on the architecture's fixed input and compares each layer with the Python hook
  // reference; `expected_shapes` are the shapes the runner must return.
  void ExpectMatchesReference(const std::string& model, const std::string& arch,
                              const std::vector<std::string>& layers,
                              const std::vector<std::vector<int64_t>>& expected_shapes) {
    auto runner = LoadModel(model, layers);
    ND_ASSERT_OK(runner);
    const torch::Tensor input = refs_.Load(arch + "_input.bin");
    auto outputs = runner->Run(input);
    ND_ASSERT_OK(outputs);
    ASSERT_EQ(outputs->size(), layers.size());
    for (size_t i = 0; i < layers.size(); ++i) {
      SCOPED_TRACE(model + " " + layers[i]);
      const torch::Tensor& got = (*outputs)[i];
      EXPECT_EQ(got.scalar_type(), torch::kFloat);
      EXPECT_TRUE(got.device().is_cpu());
      EXPECT_TRUE(got.is_contiguous());
      ASSERT_EQ(got.sizes().vec(), expected_shapes[i]);
      const torch::Tensor want =
          refs_.Load(arch + "__" + layers[i] + ".bin").reshape(expected_shapes[i]);
      ASSERT_TRUE(want.defined());
      const double max_diff = (got - want).abs().max().item<double>();
      EXPECT_LT(max_diff, 1e-5);
      // The comparison must not be vacuous: the reference holds non-trivial values.
      EXPECT_GT(want.abs().max().item<double>(), 1e-3);
    }
  }

  References refs_;
};

const std::vector<std::string> kResnetLayers = {"layer4", "layer3.1.conv2", "layer1", "fc",
                                                "avgpool"};
const std::vector<std::vector<int64_t>> kResnetShapes = {
    {3, 512, 2, 2}, {3, 256, 4, 4}, {3, 64, 16, 16}, {3, 1000, 1, 1}, {3, 512, 1, 1}};

TEST_F(LayerCaptureTest, TracedResnet18MatchesPythonHooks) {
  ExpectMatchesReference("resnet18_traced.pt", "resnet18", kResnetLayers, kResnetShapes);
}

TEST_F(LayerCaptureTest, ScriptedResnet18MatchesPythonHooks) {
  ExpectMatchesReference("resnet18_scripted.pt", "resnet18", kResnetLayers, kResnetShapes);
}

// A Sequential and its last child output the same tensor; both names must resolve to it.
TEST_F(LayerCaptureTest, SequentialAndItsLastChildShareTheOutput) {
  for (const char* model : {"resnet18_traced.pt", "resnet18_scripted.pt"}) {
    ExpectMatchesReference(model, "resnet18", {"layer4.1", "layer4"},
                           {{3, 512, 2, 2}, {3, 512, 2, 2}});
  }
}

// BasicBlock calls its ReLU module twice (in place); the last call's output is the layer's.
TEST_F(LayerCaptureTest, ModuleCalledTwiceGivesLastCall) {
  for (const char* model : {"resnet18_traced.pt", "resnet18_scripted.pt"}) {
    ExpectMatchesReference(model, "resnet18", {"layer1.0.relu"}, {{3, 64, 16, 16}});
  }
}

// features.10 is a conv followed by ReLU(inplace=True): the capture must hold the conv's output,
// not the rectified tensor it becomes later.
TEST_F(LayerCaptureTest, ScriptedAlexnetConvBeforeInplaceRelu) {
  ExpectMatchesReference("alexnet_scripted.pt", "alexnet",
                         {"features.10", "features.11", "classifier.6"},
                         {{3, 256, 3, 3}, {3, 256, 3, 3}, {3, 10, 1, 1}});
}

TEST_F(LayerCaptureTest, UnknownLayerListsModulePathsAndNamesFile) {
  auto runner = LoadModel("resnet18_scripted.pt", {"layer4", "layer9"});
  ASSERT_FALSE(runner.ok());
  const std::string& message = runner.status().message();
  EXPECT_EQ(runner.status().code(), StatusCode::kNotFound);
  EXPECT_NE(message.find("layer 'layer9' not found in " + Model("resnet18_scripted.pt") +
                         "; module paths are: conv1, bn1, relu, maxpool, layer1, layer1.0, "
                         "layer1.0.conv1, layer1.0.bn1, layer1.0.relu, layer1.0.conv2"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("layer4.1.bn2, avgpool, fc"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "error must be one line";
}

TEST_F(LayerCaptureTest, ModulePathsListsEverySubmodule) {
  auto runner = LoadModel("alexnet_scripted.pt", {"features.10"});
  ND_ASSERT_OK(runner);
  const std::vector<std::string> paths = runner->ModulePaths();
  // features (13 children) + avgpool + classifier (7 children) + the three containers.
  EXPECT_EQ(paths.size(), 1u + 13u + 1u + 1u + 7u);
  EXPECT_EQ(paths.front(), "features");
  EXPECT_EQ(paths[1], "features.0");
  EXPECT_EQ(paths.back(), "classifier.6");
  EXPECT_EQ(runner->layers(), std::vector<std::string>{"features.10"});
}

TEST_F(LayerCaptureTest, GarbageFileIsAClearError) {
  const std::string path = ::testing::TempDir() + "/garbage_model.pt";
  WriteBytes(path, "this is not a zip archive, let alone TorchScript\n");
  ModelOptions options;
  options.path = path;
  options.layers = {"layer4"};
  options.device = "cpu";
  auto runner = ModelRunner::Load(options);
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.status().message().rfind(path + ": not a TorchScript file (", 0), 0u)
      << runner.status().message();
  EXPECT_EQ(runner.status().message().find('\n'), std::string::npos);
  std::remove(path.c_str());
}

TEST_F(LayerCaptureTest, TruncatedModelIsAClearError) {
  const std::string bytes = ReadBytes(Model("resnet18_traced.pt"));
  ASSERT_GT(bytes.size(), 1000u);
  const std::string path = ::testing::TempDir() + "/truncated_model.pt";
  WriteBytes(path, bytes.substr(0, bytes.size() / 2));
  ModelOptions options;
  options.path = path;
  options.layers = {"layer4"};
  options.device = "cpu";
  auto runner = ModelRunner::Load(options);
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(runner.status().message().rfind(path + ": not a TorchScript file (", 0), 0u)
      << runner.status().message();
  std::remove(path.c_str());
}

TEST_F(LayerCaptureTest, MissingFileIsNotFound) {
  auto runner = LoadModel("no_such_model.pt", {"layer4"});
  ASSERT_FALSE(runner.ok());
  EXPECT_EQ(runner.status().code(), StatusCode::kNotFound);
  EXPECT_NE(runner.status().message().find("no_such_model.pt"), std::string::npos);
}

TEST_F(LayerCaptureTest, LoadDoesNotModifyTheModelFile) {
  for (const char* model : {"resnet18_traced.pt", "resnet18_scripted.pt"}) {
    const std::string before = ReadBytes(Model(model));
    {
      auto runner = LoadModel(model, {"layer4", "fc"});
      ND_ASSERT_OK(runner);
      auto outputs = runner->Run(torch::rand({1, 3, 64, 64}));
      ND_ASSERT_OK(outputs);
    }
    EXPECT_EQ(ReadBytes(Model(model)), before) << model;
  }
}

TEST_F(LayerCaptureTest, BatchOfOneAndOfThreeAgree) {
  auto runner = LoadModel("resnet18_traced.pt", {"layer3.1.conv2", "fc"});
  ND_ASSERT_OK(runner);
  const torch::Tensor input = refs_.Load("resnet18_input.bin");
  auto batch = runner->Run(input);
  ND_ASSERT_OK(batch);
  for (int64_t i = 0; i < 3; ++i) {
    auto single = runner->Run(input.slice(0, i, i + 1));
    ND_ASSERT_OK(single);
    for (size_t layer = 0; layer < 2; ++layer) {
      ASSERT_EQ((*single)[layer].size(0), 1);
      // Convolution kernels block differently for other batch sizes: rounding-level differences
      // (about 1e-5 on values of a few units) are expected, wrong images are not.
      EXPECT_TRUE(torch::allclose((*single)[layer][0], (*batch)[layer][i], 1e-4, 1e-4))
          << "image " << i << " layer " << layer;
      if (i > 0) {
        EXPECT_FALSE(torch::allclose((*single)[layer][0], (*batch)[layer][0], 1e-4, 1e-4))
            << "images " << i << " and 0 must differ";
      }
    }
  }
}

TEST_F(LayerCaptureTest, RepeatedRunsGiveTheSameResult) {
  // The profiling executor re-optimises the graph on the first calls; results must not change.
  auto runner = LoadModel("resnet18_scripted.pt", {"layer1"});
  ND_ASSERT_OK(runner);
  const torch::Tensor input = refs_.Load("resnet18_input.bin");
  auto first = runner->Run(input);
  ND_ASSERT_OK(first);
  for (int i = 0; i < 3; ++i) {
    auto again = runner->Run(input);
    ND_ASSERT_OK(again);
    EXPECT_LT(((*again)[0] - (*first)[0]).abs().max().item<double>(), 1e-6);
  }
}

TEST_F(LayerCaptureTest, BadInputIsAnErrorNotACrash) {
  auto runner = LoadModel("resnet18_traced.pt", {"layer4"});
  ND_ASSERT_OK(runner);
  EXPECT_EQ(runner->Run(torch::rand({2, 1, 64, 64})).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(runner->Run(torch::rand({3, 64, 64})).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(runner->Run(torch::rand({1, 3, 64, 64}, torch::kDouble)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(runner->Run(torch::Tensor()).status().code(), StatusCode::kInvalidArgument);
  // Empty images: LibTorch throws inside forward; it must come back as a Status.
  auto tiny = runner->Run(torch::rand({1, 3, 0, 0}));
  ASSERT_FALSE(tiny.ok());
  EXPECT_EQ(tiny.status().message().find('\n'), std::string::npos) << tiny.status().message();
}

TEST_F(LayerCaptureTest, BadOptionsAreErrors) {
  ModelOptions options;
  options.path = Model("resnet18_traced.pt");
  options.layers = {"layer4"};
  options.device = "tpu";
  EXPECT_EQ(ModelRunner::Load(options).status().code(), StatusCode::kInvalidArgument);
  options.device = "cpu";
  options.precision = "fp8";
  EXPECT_EQ(ModelRunner::Load(options).status().code(), StatusCode::kInvalidArgument);
  options.precision = "fp32";
  options.layers = {};
  EXPECT_EQ(ModelRunner::Load(options).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(LayerCaptureTest, HalfPrecisionOnCpuFallsBackToFp32) {
  ModelOptions options;
  options.path = Model("resnet18_traced.pt");
  options.layers = {"layer4"};
  options.device = "cpu";
  options.precision = "fp16";
  auto runner = ModelRunner::Load(options);
  ND_ASSERT_OK(runner);
  EXPECT_EQ(runner->precision(), "fp32");
  EXPECT_EQ(runner->device(), "cpu");
}

TEST_F(LayerCaptureTest, ChannelsLastGivesTheSameActivations) {
  ModelOptions options;
  options.path = Model("resnet18_scripted.pt");
  options.layers = {"layer3.1.conv2", "fc"};
  options.device = "cpu";
  options.channels_last = true;
  auto runner = ModelRunner::Load(options);
  ND_ASSERT_OK(runner);
  auto outputs = runner->Run(refs_.Load("resnet18_input.bin"));
  ND_ASSERT_OK(outputs);
  EXPECT_TRUE((*outputs)[0].is_contiguous());
  const torch::Tensor want = refs_.Load("resnet18__layer3.1.conv2.bin");
  EXPECT_LT(((*outputs)[0] - want).abs().max().item<double>(), 1e-4);
}

TEST_F(LayerCaptureTest, TimeBareForwardReturnsPositiveSeconds) {
  auto runner = LoadModel("resnet18_traced.pt", {"layer4"});
  ND_ASSERT_OK(runner);
  auto seconds = TimeBareForward(*runner, torch::rand({1, 3, 64, 64}), 2);
  ND_ASSERT_OK(seconds);
  EXPECT_GT(*seconds, 0.0);
  EXPECT_FALSE(TimeBareForward(*runner, torch::rand({1, 3, 64, 64}), 0).ok());
}

// The capture method is added to the in-memory class only; forward keeps its behaviour.
TEST_F(LayerCaptureTest, ForwardIsUnchangedAfterCapture) {
  auto runner = LoadModel("resnet18_scripted.pt", {"layer1"});
  ND_ASSERT_OK(runner);
  const torch::Tensor input = refs_.Load("resnet18_input.bin");
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = runner->module().forward({input}).toTensor();
  const torch::Tensor want = refs_.Load("resnet18__fc.bin");
  EXPECT_LT((logits - want).abs().max().item<double>(), 1e-5);
}

// AddCaptureMethod on a module that already has a capture method adds a second one.
TEST_F(LayerCaptureTest, CaptureMethodNamesAreNotReused) {
  torch::jit::Module module = torch::jit::load(Model("alexnet_scripted.pt"));
  module.eval();
  auto first = AddCaptureMethod(module, {"features.10"}, "alexnet");
  ND_ASSERT_OK(first);
  auto second = AddCaptureMethod(module, {"classifier.6", "features.11"}, "alexnet");
  ND_ASSERT_OK(second);
  EXPECT_NE(*first, *second);
  torch::NoGradGuard no_grad;
  const torch::Tensor input = refs_.Load("alexnet_input.bin");
  const auto one = module.get_method(*first)({input}).toTupleRef().elements();
  const auto two = module.get_method(*second)({input}).toTupleRef().elements();
  ASSERT_EQ(one.size(), 1u);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_LT((one[0].toTensor() - refs_.Load("alexnet__features.10.bin")).abs().max().item<double>(),
            1e-5);
  EXPECT_LT(
      (two[0].toTensor() - refs_.Load("alexnet__classifier.6.bin")).abs().max().item<double>(),
      1e-5);
}

}  // namespace
}  // namespace nd
