#include "tools/train/trainer.h"

#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

#include "common/base/args.h"
#include "common/base/parallel.h"
#include "common/base/text_format.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/preprocess.h"
#include "common/torch/torch_status.h"

namespace nd {

const char kTrainUsage[] =
    "usage: nd-train --data DIR --out MODEL.pt [options]\n"
    "\n"
    "Trains a small CNN to classify the scene label of a Broden-format dataset (nd-make-broden\n"
    "writes one) and saves it as a TorchScript file for nd-pipeline. Prints train and validation\n"
    "accuracy (index.csv split column) after every epoch and at the end.\n"
    "\n"
    "options:\n"
    "  --data DIR              Broden-format dataset (required)\n"
    "  --out FILE              TorchScript file to write (required)\n"
    "  --arch A                resnet (layer1..layer4) or alexnet (features.N); default resnet\n"
    "  --width W               base channel width (default 32; resnet layer4 has 8W units)\n"
    "  --blocks N              resnet: basic blocks per stage, 1 or 2 (default 1)\n"
    "  --stem-pool on|off      resnet: maxpool after conv1 (default on; off doubles map sizes)\n"
    "  --last-stride 1|2       resnet: stride of layer4 (default 2; 1 doubles its map size)\n"
    "  --batchnorm on|off      BatchNorm after convolutions (default on)\n"
    "  --dropout on|off        dropout (p=0.5) before the classifier (default off)\n"
    "  --epochs E              passes over the training images (default 10)\n"
    "  --seed S                seed of weights, order and flips (default 1)\n"
    "  --input-size N          images are resized to NxN (default 128); use the same\n"
    "                          model.input_size when dissecting\n"
    "  --batch-size B          images per iteration (default 32)\n"
    "  --lr LR                 peak learning rate, cosine decay to 0 (default 0.05)\n"
    "  --optimizer sgd|adam    SGD with momentum 0.9, wd 5e-4, or Adam (default sgd)\n"
    "  --checkpoint-every K    also save FILE.ckpt-<iteration>.pt every K iterations (default 0)\n"
    "  --threads T             LibTorch and decode threads (default 0 = all cores)\n"
    "  --preprocess P          torchvision or netdissect normalisation (default torchvision)\n"
    "  --flip on|off           random horizontal flips (default on)\n"
    "  -h, --help              this help\n";

namespace {

namespace fs = std::filesystem;

constexpr double kPi = 3.14159265358979323846;

// The extra file saved with the model: what a user needs to run it on new images.
std::string DescribeModel(const TrainOptions& o, const SceneImages& data) {
  std::ostringstream j;
  j << "{\"tool\": \"nd-train\", \"arch\": " << JsonString(o.model.arch)
    << ", \"width\": " << o.model.width << ", \"blocks\": " << o.model.blocks
    << ", \"stem_pool\": " << (o.model.stem_pool ? "true" : "false")
    << ", \"last_stride\": " << o.model.last_stride
    << ", \"batchnorm\": " << (o.model.batchnorm ? "true" : "false")
    << ", \"dropout\": " << (o.model.dropout ? "true" : "false")
    << ", \"input_size\": " << o.input_size << ", \"preprocess\": " << JsonString(o.preprocess)
    << ", \"seed\": " << o.seed << ", \"epochs\": " << o.epochs << ", \"classes\": [";
  for (size_t k = 0; k < data.class_names.size(); ++k) {
    j << (k ? ", " : "") << JsonString(data.class_names[k]);
  }
  j << "], \"class_labels\": [";
  for (size_t k = 0; k < data.class_labels.size(); ++k) {
    j << (k ? ", " : "") << data.class_labels[k];
  }
  j << "]}\n";
  return j.str();
}

// Saves `module` in eval mode to `path` through "<path>.partial" and a rename; leaves the module
// in training mode. Saved through a stream, so the archive's internal folder is always "archive"
// (saving to a file name uses the name): the bytes depend on the network, not on --out.
Status SaveModel(torch::jit::Module& module, const std::string& path, const std::string& json) {
  const std::string partial = path + ".partial";
  std::ofstream file(partial, std::ios::binary | std::ios::trunc);
  if (!file) {
    return IoError(path + ": cannot create " + partial + " (" + std::strerror(errno) + ")");
  }
  Status saved = GuardTorch(
      path + ": cannot save the model",
      [&]() -> Status {
        module.eval();
        torch::jit::ExtraFilesMap extra{{"nd_train.json", json}};
        module.save(file, extra);
        module.train();
        return Status::Ok();
      },
      StatusCode::kIoError);
  file.close();
  std::error_code ec;
  if (saved.ok() && !file) saved = IoError(path + ": cannot write " + partial);
  if (!saved.ok()) {
    fs::remove(partial, ec);
    return saved;
  }
  fs::rename(partial, path, ec);
  if (ec) {
    fs::remove(partial, ec);
    return IoError(path + ": cannot rename " + partial + " (" + ec.message() + ")");
  }
  return Status::Ok();
}

// Fraction of `x` that `module` (in eval mode) classifies as `y`.
double Accuracy(torch::jit::Module& module, const torch::Tensor& x, const torch::Tensor& y,
                int batch_size) {
  const int64_t n = x.size(0);
  if (n == 0) return 0;
  torch::NoGradGuard no_grad;
  module.eval();
  int64_t correct = 0;
  for (int64_t begin = 0; begin < n; begin += batch_size) {
    const int64_t end = std::min<int64_t>(n, begin + batch_size);
    const torch::Tensor logits = module.forward({x.slice(0, begin, end)}).toTensor();
    correct += logits.argmax(1).eq(y.slice(0, begin, end)).sum().item<int64_t>();
  }
  module.train();
  return static_cast<double>(correct) / static_cast<double>(n);
}

// The parent directory of --out must exist (checked before the long part).
Status CheckOutputDir(const std::string& out) {
  const fs::path parent = fs::path(out).parent_path();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec)) {
    return NotFound("--out " + out + ": directory " + parent.string() + " does not exist");
  }
  if (fs::is_directory(out, ec)) return InvalidArgument("--out " + out + ": is a directory");
  return Status::Ok();
}

}  // namespace

Status ValidateTrainOptions(const TrainOptions& o) {
  if (o.data_dir.empty()) return InvalidArgument("--data DIR is required (see --help)");
  if (o.out_path.empty()) return InvalidArgument("--out FILE is required (see --help)");
  ND_RETURN_IF_ERROR(ValidateModelSpec(o.model));
  if (o.epochs < 1) return InvalidArgument("--epochs: must be >= 1");
  if (o.input_size < 32 || o.input_size > 1024) {
    return InvalidArgument("--input-size: must be in 32..1024, got " +
                           std::to_string(o.input_size));
  }
  if (o.batch_size < 2) return InvalidArgument("--batch-size: must be >= 2");
  if (!(o.lr > 0)) return InvalidArgument("--lr: must be > 0");
  if (o.optimizer != "sgd" && o.optimizer != "adam") {
    return InvalidArgument("--optimizer: '" + o.optimizer + "' is not one of sgd, adam");
  }
  if (o.checkpoint_every < 0) return InvalidArgument("--checkpoint-every: must be >= 0");
  if (o.threads < 0) return InvalidArgument("--threads: must be >= 0");
  if (o.preprocess != "torchvision" && o.preprocess != "netdissect") {
    return InvalidArgument("--preprocess: '" + o.preprocess +
                           "' is not one of torchvision, netdissect");
  }
  return Status::Ok();
}

StatusOr<TrainOptions> ParseTrainArgs(const std::vector<std::string>& args, bool* help) {
  TrainOptions o;
  ArgParser parser;
  parser.String("--data", &o.data_dir)
      .String("--out", &o.out_path)
      .String("--arch", &o.model.arch)
      .Int("--width", &o.model.width, 1, 512)
      .Int("--blocks", &o.model.blocks, 1, 2)
      .OnOff("--stem-pool", &o.model.stem_pool)
      .Int("--last-stride", &o.model.last_stride, 1, 2)
      .OnOff("--batchnorm", &o.model.batchnorm)
      .OnOff("--dropout", &o.model.dropout)
      .Int("--epochs", &o.epochs, 1, 100000)
      .Int("--seed", &o.seed, uint64_t{0})
      .Int("--input-size", &o.input_size, 32, 1024)
      .Int("--batch-size", &o.batch_size, 2, 65536)
      .Custom("--lr",
              [&o](const std::string& v) {
                char* end = nullptr;
                const double lr = std::strtod(v.c_str(), &end);
                if (v.empty() || *end != '\0' || !std::isfinite(lr)) {
                  return InvalidArgument("'" + v + "' is not a number");
                }
                if (!(lr > 0)) return InvalidArgument("must be > 0, got " + v);
                o.lr = lr;
                return Status::Ok();
              })
      .String("--optimizer", &o.optimizer)
      .Int("--checkpoint-every", &o.checkpoint_every, int64_t{0})
      .Int("--threads", &o.threads, 0, 1024)
      .String("--preprocess", &o.preprocess)
      .OnOff("--flip", &o.flip);
  ND_RETURN_IF_ERROR(parser.Parse(args));
  *help = parser.help();
  if (*help) return o;
  ND_RETURN_IF_ERROR(ValidateTrainOptions(o));
  return o;
}

StatusOr<SceneImages> LoadSceneImages(const TrainOptions& options) {
  const std::string& dir = options.data_dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("--data " + dir + ": no such directory");
  if (!fs::exists(fs::path(dir) / "index.csv", ec)) {
    return NotFound("--data " + dir + ": not a Broden dataset (no index.csv)");
  }
  auto opened = BrodenDataset::Open(dir);
  if (!opened.ok()) return opened.status().WithContext("--data " + dir);
  const BrodenDataset& dataset = *opened;
  const int scene = dataset.CategoryIndex("scene");
  if (scene < 0) {
    return InvalidArgument("--data " + dir + ": category.csv has no 'scene' category");
  }
  SceneImages data;
  std::vector<int> class_of_label(dataset.num_labels(), -1);
  for (const BrodenLabel& label : dataset.labels()) {
    if (!label.defined || label.coverage[scene] < 0) continue;
    class_of_label[label.number] = static_cast<int>(data.class_names.size());
    data.class_names.push_back(label.name);
    data.class_labels.push_back(label.number);
  }
  if (data.class_names.size() < 2) {
    return InvalidArgument("--data " + dir + ": c_scene.csv names " +
                           std::to_string(data.class_names.size()) +
                           " scene label(s); need at least 2 classes");
  }

  // Rows to decode, in index.csv order, and their class.
  std::vector<size_t> train_rows, val_rows;
  std::vector<int64_t> train_y, val_y;
  for (size_t i = 0; i < dataset.images().size(); ++i) {
    const BrodenImage& image = dataset.images()[i];
    const std::vector<int>& scalars = image.scalar_labels[scene];
    if (scalars.empty() || scalars[0] <= 0 || scalars[0] >= dataset.num_labels() ||
        class_of_label[scalars[0]] < 0) {
      ++data.skipped_unlabelled;
      continue;
    }
    const bool val = image.split == "val";
    (val ? val_rows : train_rows).push_back(i);
    (val ? val_y : train_y).push_back(class_of_label[scalars[0]]);
  }
  if (train_rows.size() < 2) {
    return InvalidArgument("--data " + dir + ": " + std::to_string(train_rows.size()) +
                           " training image(s) with a scene label; need at least 2");
  }

  const int s = options.input_size;
  const int64_t per_image = 3LL * s * s;
  auto decode = [&](const std::vector<size_t>& rows, torch::Tensor* out) -> Status {
    *out = torch::empty({static_cast<int64_t>(rows.size()), 3, s, s}, torch::kFloat);
    float* base = out->data_ptr<float>();
    return ParallelFor(
        rows.size(), WorkerCount(options.threads),
        [&](size_t k) -> Status {
          const BrodenImage& image = dataset.images()[rows[k]];
          auto path = dataset.ResolveImagePath(image.image);
          if (!path.ok()) return path.status().WithContext("--data " + dir);
          std::ifstream in(*path, std::ios::binary);
          const std::string bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
          if (bytes.empty()) {
            return NotFound(*path + ": missing or empty image file (index.csv line " +
                            std::to_string(image.line) + ")");
          }
          Status st = DecodeAndPreprocess(bytes, s, options.preprocess,
                                          base + static_cast<int64_t>(k) * per_image);
          if (st.code() == StatusCode::kDataLoss) {
            return DataLoss(*path + ": " + st.message() + " (index.csv line " +
                            std::to_string(image.line) + ")");
          }
          return st.WithContext(*path);
        },
        "nd-train");
  };
  ND_RETURN_IF_ERROR(decode(train_rows, &data.train_x));
  ND_RETURN_IF_ERROR(decode(val_rows, &data.val_x));
  data.train_y = torch::tensor(train_y, torch::kLong);
  data.val_y = torch::tensor(val_y, torch::kLong);
  return data;
}

StatusOr<TrainReport> TrainOn(const SceneImages& data, const TrainOptions& options,
                              const TrainCallbacks& callbacks) {
  ND_RETURN_IF_ERROR(ValidateTrainOptions(options));
  ND_RETURN_IF_ERROR(CheckOutputDir(options.out_path));
  if (data.train_x.size(0) < 2) return InvalidArgument("need at least 2 training images");
  if (data.train_x.size(2) != options.input_size) {
    return InvalidArgument("images were loaded at " + std::to_string(data.train_x.size(2)) +
                           " px, --input-size is " + std::to_string(options.input_size));
  }
  const auto start = std::chrono::steady_clock::now();
  auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  const auto message = [&](const std::string& line) {
    if (callbacks.on_message) callbacks.on_message(line);
  };

  TrainReport report;
  report.class_names = data.class_names;
  report.train_images = data.train_x.size(0);
  report.val_images = data.val_x.defined() ? data.val_x.size(0) : 0;
  report.skipped_images = data.skipped_unlabelled;

  ModelSpec spec = options.model;
  spec.num_classes = static_cast<int>(data.class_names.size());
  const std::string json = DescribeModel(options, data);

  torch::set_num_threads(options.threads > 0
                             ? options.threads
                             : std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  torch::manual_seed(options.seed);
  ND_ASSIGN_OR_RETURN(torch::jit::Module module, BuildModel(spec));

  const std::string out = options.out_path;
  Status status = GuardTorch("training", [&]() -> Status {
    // Plain interpretation of each op (as eager mode): no profiling runs, no graph rewrites
    // between iterations, so every iteration computes the same way.
    torch::jit::GraphOptimizerEnabledGuard no_optimizer(false);
    std::vector<torch::Tensor> params;
    for (torch::Tensor p : module.parameters()) {
      p.requires_grad_(true);
      params.push_back(p);
      report.parameters += p.numel();
    }
    std::unique_ptr<torch::optim::Optimizer> optimizer;
    if (options.optimizer == "sgd") {
      optimizer = std::make_unique<torch::optim::SGD>(
          params, torch::optim::SGDOptions(options.lr).momentum(0.9).weight_decay(5e-4));
    } else {
      optimizer =
          std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(options.lr));
    }
    module.train();

    const int64_t n = data.train_x.size(0);
    const int64_t b = options.batch_size;
    // Batches per epoch; a last batch of a single image is dropped (BatchNorm needs two).
    const int64_t batches = n / b + (n % b >= 2 ? 1 : 0);
    const int64_t total = batches * options.epochs;
    std::mt19937_64 rng(options.seed);
    std::vector<int64_t> order(n);
    int64_t iteration = 0;
    for (int epoch = 1; epoch <= options.epochs; ++epoch) {
      const auto epoch_start = std::chrono::steady_clock::now();
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      double loss_sum = 0;
      int64_t correct = 0, seen = 0;
      for (int64_t k = 0; k < batches; ++k) {
        const int64_t begin = k * b, end = std::min(n, begin + b);
        std::vector<int64_t> idx(order.begin() + begin, order.begin() + end);
        std::vector<uint8_t> flips(idx.size(), 0);
        if (options.flip) {
          for (auto& f : flips) f = static_cast<uint8_t>(rng() >> 63);
        }
        const torch::Tensor index = torch::tensor(idx, torch::kLong);
        torch::Tensor x = data.train_x.index_select(0, index);
        const torch::Tensor y = data.train_y.index_select(0, index);
        if (options.flip) {
          const torch::Tensor mask =
              torch::tensor(std::vector<int64_t>(flips.begin(), flips.end()), torch::kLong)
                  .to(torch::kBool)
                  .view({-1, 1, 1, 1});
          x = torch::where(mask, x.flip({3}), x);
        }
        const double lr =
            0.5 * options.lr * (1 + std::cos(kPi * static_cast<double>(iteration) / total));
        for (auto& group : optimizer->param_groups()) group.options().set_lr(lr);

        const torch::Tensor logits = module.forward({x}).toTensor();
        const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
        optimizer->zero_grad();
        loss.backward();
        optimizer->step();
        ++iteration;

        const double l = loss.item<double>();
        if (!std::isfinite(l)) {
          return FailedPrecondition("the loss diverged (" + std::to_string(l) + ") at iteration " +
                                    std::to_string(iteration) + "; try a smaller --lr");
        }
        report.iteration_loss.push_back(l);
        loss_sum += l;
        correct += logits.argmax(1).eq(y).sum().item<int64_t>();
        seen += static_cast<int64_t>(idx.size());
        if (options.checkpoint_every > 0 && iteration % options.checkpoint_every == 0) {
          const std::string path = out + ".ckpt-" + std::to_string(iteration) + ".pt";
          ND_RETURN_IF_ERROR(SaveModel(module, path, json));
          report.checkpoints.push_back(path);
        }
      }
      EpochReport e;
      e.epoch = epoch;
      e.iterations = iteration;
      e.train_loss = loss_sum / static_cast<double>(batches);
      e.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
      if (report.val_images > 0) {
        e.val_accuracy = Accuracy(module, data.val_x, data.val_y, 2 * options.batch_size);
      }
      e.seconds = seconds_since(epoch_start);
      report.epochs.push_back(e);
      if (callbacks.on_epoch) callbacks.on_epoch(e);
    }
    for (torch::Tensor p : params) p.requires_grad_(false);
    report.final_train_accuracy =
        Accuracy(module, data.train_x, data.train_y, 2 * options.batch_size);
    report.final_val_accuracy = report.val_images > 0 ? report.epochs.back().val_accuracy : 0.0;
    return SaveModel(module, out, json);
  });
  ND_RETURN_IF_ERROR(status);
  report.train_seconds = seconds_since(start);
  message("saved " + out);
  return report;
}

StatusOr<TrainReport> Train(const TrainOptions& options, const TrainCallbacks& callbacks) {
  ND_RETURN_IF_ERROR(ValidateTrainOptions(options));
  ND_RETURN_IF_ERROR(CheckOutputDir(options.out_path));
  const auto start = std::chrono::steady_clock::now();
  ND_ASSIGN_OR_RETURN(SceneImages data, LoadSceneImages(options));
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (callbacks.on_message) {
    char line[256];
    std::snprintf(line, sizeof(line),
                  "loaded %lld train + %lld val images at %dx%d (%zu classes; %lld rows without "
                  "a scene label skipped) in %.1f s",
                  static_cast<long long>(data.train_x.size(0)),
                  static_cast<long long>(data.val_x.size(0)), options.input_size,
                  options.input_size, data.class_names.size(),
                  static_cast<long long>(data.skipped_unlabelled), load_seconds);
    callbacks.on_message(line);
  }
  ND_ASSIGN_OR_RETURN(TrainReport report, TrainOn(data, options, callbacks));
  report.load_seconds = load_seconds;
  return report;
}

}  // namespace nd
