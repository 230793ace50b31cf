#include "tools/train/model_builder.h"

#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <utility>

#include "common/torch/torch_status.h"

namespace nd {
namespace {

using torch::jit::Module;

// Creates the modules of one network. All classes live in one CompilationUnit, mangled so that
// every instance has its own class (and its own `forward` with its constants baked in).
class Builder {
 public:
  Builder() : cu_(std::make_shared<torch::jit::CompilationUnit>()) {}

  Module New(const std::string& kind) {
    Module m(c10::QualifiedName("__torch__.nd_train." + kind), cu_, /*shouldMangle=*/true);
    // Module::train / eval set this attribute on every submodule; batch_norm and dropout read it.
    m.register_attribute("training", c10::BoolType::get(), true);
    return m;
  }

  Module Conv(int in, int out, int kernel, int stride, int pad, bool bias) {
    Module m = New("Conv2d");
    // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu").
    const double std_dev = std::sqrt(2.0 / (static_cast<double>(out) * kernel * kernel));
    m.register_parameter("weight", torch::randn({out, in, kernel, kernel}) * std_dev, false);
    if (bias) m.register_parameter("bias", torch::zeros({out}), false);
    std::ostringstream src;
    src << "def forward(self, x):\n"
        << "    return torch.conv2d(x, self.weight, " << (bias ? "self.bias" : "None") << ", ["
        << stride << ", " << stride << "], [" << pad << ", " << pad << "], [1, 1], 1)\n";
    m.define(src.str());
    return m;
  }

  Module BatchNorm(int channels) {
    Module m = New("BatchNorm2d");
    m.register_parameter("weight", torch::ones({channels}), false);
    m.register_parameter("bias", torch::zeros({channels}), false);
    m.register_buffer("running_mean", torch::zeros({channels}));
    m.register_buffer("running_var", torch::ones({channels}));
    m.define(
        "def forward(self, x):\n"
        "    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, "
        "self.running_var, self.training, 0.1, 1e-05, True)\n");
    return m;
  }

  Module Relu() {
    Module m = New("ReLU");
    m.define("def forward(self, x):\n    return torch.relu(x)\n");
    return m;
  }

  Module MaxPool(int kernel, int stride, int pad) {
    Module m = New("MaxPool2d");
    std::ostringstream src;
    src << "def forward(self, x):\n"
        << "    return torch.max_pool2d(x, [" << kernel << ", " << kernel << "], [" << stride
        << ", " << stride << "], [" << pad << ", " << pad << "], [1, 1], False)\n";
    m.define(src.str());
    return m;
  }

  Module AdaptiveAvgPool(int size) {
    Module m = New("AdaptiveAvgPool2d");
    std::ostringstream src;
    src << "def forward(self, x):\n"
        << "    return torch.adaptive_avg_pool2d(x, [" << size << ", " << size << "])\n";
    m.define(src.str());
    return m;
  }

  Module Dropout() {
    Module m = New("Dropout");
    m.define("def forward(self, x):\n    return torch.dropout(x, 0.5, self.training)\n");
    return m;
  }

  Module Linear(int in, int out) {
    Module m = New("Linear");
    // PyTorch's default: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), bias alike.
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    m.register_parameter("weight", torch::rand({out, in}) * (2 * bound) - bound, false);
    m.register_parameter("bias", torch::rand({out}) * (2 * bound) - bound, false);
    m.define("def forward(self, x):\n    return torch.linear(x, self.weight, self.bias)\n");
    return m;
  }

  // Children named "0", "1", ... run in order (torch.nn.Sequential).
  Module Sequential(const std::vector<Module>& children) {
    Module m = New("Sequential");
    std::ostringstream src;
    src << "def forward(self, x):\n";
    for (size_t i = 0; i < children.size(); ++i) {
      m.register_module(std::to_string(i), children[i]);
      src << "    x = getattr(self, \"" << i << "\").forward(x)\n";
    }
    src << "    return x\n";
    m.define(src.str());
    return m;
  }

  // torchvision's BasicBlock: conv3x3-bn-relu-conv3x3-bn, plus the (projected) input, relu.
  Module BasicBlock(int in, int out, int stride, bool batchnorm) {
    Module m = New("BasicBlock");
    const bool bias = !batchnorm;
    m.register_module("conv1", Conv(in, out, 3, stride, 1, bias));
    if (batchnorm) m.register_module("bn1", BatchNorm(out));
    m.register_module("relu", Relu());
    m.register_module("conv2", Conv(out, out, 3, 1, 1, bias));
    if (batchnorm) m.register_module("bn2", BatchNorm(out));
    const bool project = stride != 1 || in != out;
    if (project) {
      std::vector<Module> down = {Conv(in, out, 1, stride, 0, bias)};
      if (batchnorm) down.push_back(BatchNorm(out));
      m.register_module("downsample", Sequential(down));
    }
    std::ostringstream src;
    src << "def forward(self, x):\n"
        << "    out = self.conv1.forward(x)\n"
        << (batchnorm ? "    out = self.bn1.forward(out)\n" : "")
        << "    out = self.relu.forward(out)\n"
        << "    out = self.conv2.forward(out)\n"
        << (batchnorm ? "    out = self.bn2.forward(out)\n" : "")
        << (project ? "    out = out + self.downsample.forward(x)\n" : "    out = out + x\n")
        << "    return self.relu.forward(out)\n";
    m.define(src.str());
    return m;
  }

 private:
  std::shared_ptr<torch::jit::CompilationUnit> cu_;
};

Module BuildResNet(const ModelSpec& spec) {
  Builder b;
  Module root = b.New("ResNet");
  const int w = spec.width;
  root.register_module("conv1", b.Conv(3, w, 7, 2, 3, !spec.batchnorm));
  if (spec.batchnorm) root.register_module("bn1", b.BatchNorm(w));
  root.register_module("relu", b.Relu());
  if (spec.stem_pool) root.register_module("maxpool", b.MaxPool(3, 2, 1));
  int in = w;
  for (int stage = 0; stage < 4; ++stage) {
    const int out = w << stage;
    std::vector<Module> blocks;
    for (int i = 0; i < spec.blocks; ++i) {
      const int stride = i > 0 || stage == 0 ? 1 : stage == 3 ? spec.last_stride : 2;
      blocks.push_back(b.BasicBlock(i == 0 ? in : out, out, stride, spec.batchnorm));
    }
    root.register_module("layer" + std::to_string(stage + 1), b.Sequential(blocks));
    in = out;
  }
  root.register_module("avgpool", b.AdaptiveAvgPool(1));
  if (spec.dropout) root.register_module("dropout", b.Dropout());
  root.register_module("fc", b.Linear(in, spec.num_classes));
  std::ostringstream src;
  src << "def forward(self, x):\n"
      << "    x = self.conv1.forward(x)\n"
      << (spec.batchnorm ? "    x = self.bn1.forward(x)\n" : "") << "    x = self.relu.forward(x)\n"
      << (spec.stem_pool ? "    x = self.maxpool.forward(x)\n" : "")
      << "    x = self.layer1.forward(x)\n"
      << "    x = self.layer2.forward(x)\n"
      << "    x = self.layer3.forward(x)\n"
      << "    x = self.layer4.forward(x)\n"
      << "    x = self.avgpool.forward(x)\n"
      << "    x = torch.flatten(x, 1)\n"
      << (spec.dropout ? "    x = self.dropout.forward(x)\n" : "")
      << "    return self.fc.forward(x)\n";
  root.define(src.str());
  return root;
}

// Conv widths of the alexnet features, torchvision's 64, 192, 384, 256, 256 scaled by W/64.
std::vector<int> AlexNetWidths(int w) { return {w, 3 * w, 6 * w, 4 * w, 4 * w}; }

Module BuildAlexNet(const ModelSpec& spec) {
  Builder b;
  const std::vector<int> widths = AlexNetWidths(spec.width);
  const int kernels[5] = {11, 5, 3, 3, 3}, strides[5] = {4, 1, 1, 1, 1}, pads[5] = {2, 2, 1, 1, 1};
  std::vector<Module> features;
  int in = 3;
  for (int i = 0; i < 5; ++i) {
    features.push_back(b.Conv(in, widths[i], kernels[i], strides[i], pads[i], !spec.batchnorm));
    if (spec.batchnorm) features.push_back(b.BatchNorm(widths[i]));
    features.push_back(b.Relu());
    if (i == 0 || i == 1 || i == 4) features.push_back(b.MaxPool(3, 2, 0));
    in = widths[i];
  }
  const int pooled = 3, hidden = 16 * spec.width;
  std::vector<Module> classifier;
  if (spec.dropout) classifier.push_back(b.Dropout());
  classifier.push_back(b.Linear(in * pooled * pooled, hidden));
  classifier.push_back(b.Relu());
  if (spec.dropout) classifier.push_back(b.Dropout());
  classifier.push_back(b.Linear(hidden, hidden));
  classifier.push_back(b.Relu());
  classifier.push_back(b.Linear(hidden, spec.num_classes));

  Module root = b.New("AlexNet");
  root.register_module("features", b.Sequential(features));
  root.register_module("avgpool", b.AdaptiveAvgPool(pooled));
  root.register_module("classifier", b.Sequential(classifier));
  root.define(
      "def forward(self, x):\n"
      "    x = self.features.forward(x)\n"
      "    x = self.avgpool.forward(x)\n"
      "    x = torch.flatten(x, 1)\n"
      "    return self.classifier.forward(x)\n");
  return root;
}

}  // namespace

Status ValidateModelSpec(const ModelSpec& spec) {
  if (spec.arch != "resnet" && spec.arch != "alexnet") {
    return InvalidArgument("--arch: '" + spec.arch + "' is not one of resnet, alexnet");
  }
  if (spec.width < 1 || spec.width > 512) {
    return InvalidArgument("--width: must be in 1..512, got " + std::to_string(spec.width));
  }
  if (spec.blocks < 1 || spec.blocks > 2) {
    return InvalidArgument("--blocks: must be 1 or 2, got " + std::to_string(spec.blocks));
  }
  if (spec.last_stride != 1 && spec.last_stride != 2) {
    return InvalidArgument("--last-stride: must be 1 or 2, got " +
                           std::to_string(spec.last_stride));
  }
  if (spec.num_classes < 2) {
    return InvalidArgument("need at least 2 classes, got " + std::to_string(spec.num_classes));
  }
  return Status::Ok();
}

StatusOr<torch::jit::Module> BuildModel(const ModelSpec& spec) {
  ND_RETURN_IF_ERROR(ValidateModelSpec(spec));
  torch::jit::Module module;
  ND_RETURN_IF_ERROR(GuardTorch("building the " + spec.arch + " network", [&]() -> Status {
    torch::NoGradGuard no_grad;
    module = spec.arch == "resnet" ? BuildResNet(spec) : BuildAlexNet(spec);
    return Status::Ok();
  }));
  return module;
}

std::vector<std::string> ConvLayerNames(const ModelSpec& spec) {
  if (spec.arch == "resnet") return {"layer1", "layer2", "layer3", "layer4"};
  // features: per conv i: conv, [bn], relu, and a maxpool after convs 0, 1 and 4.
  std::vector<std::string> names;
  int index = 0;
  for (int i = 0; i < 5; ++i) {
    names.push_back("features." + std::to_string(index));
    index += spec.batchnorm ? 3 : 2;
    if (i == 0 || i == 1 || i == 4) ++index;
  }
  return names;
}

std::vector<int> ConvLayerUnits(const ModelSpec& spec) {
  if (spec.arch == "resnet") {
    return {spec.width, 2 * spec.width, 4 * spec.width, 8 * spec.width};
  }
  return AlexNetWidths(spec.width);
}

std::string ClassifierName(const ModelSpec& spec) {
  if (spec.arch == "resnet") return "fc";
  // classifier: [dropout], linear, relu, [dropout], linear, relu, linear.
  return spec.dropout ? "classifier.6" : "classifier.4";
}

}  // namespace nd
