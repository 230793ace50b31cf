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
#include <map>
#include <numeric>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

#include "common/base/args.h"
#include "common/base/digest.h"
#include "common/base/parallel.h"
#include "common/base/text_format.h"
#include "common/broden/broden_dataset.h"
#include "common/preprocess/preprocess.h"
#include "common/torch/torch_status.h"
#include "tools/train/train_record.h"

namespace nd {

const char kTrainUsage[] =
    "usage: nd-train --data DIR --out MODEL.pt [options]\n"
    "\n"
    "Trains a small CNN to classify the images of a Broden-format dataset (nd-make-broden\n"
    "writes one) by scene, object or texture, and saves it as a TorchScript file for nd-pipeline,\n"
    "with a training record MODEL.pt.json (iteration, accuracies, task, classes, options). Prints\n"
    "train and validation accuracy (index.csv split column) after every epoch and at the end.\n"
    "\n"
    "options:\n"
    "  --data DIR              Broden-format dataset (required)\n"
    "  --out FILE              TorchScript file to write (required)\n"
    "  --task T                what to classify (default scene):\n"
    "                            scene    index.csv scene label; classes: c_scene.csv\n"
    "                            texture  index.csv texture label; classes: c_texture.csv\n"
    "                            object   the c_object.csv label covering the most pixels of\n"
    "                                     the object layers (ties: lowest number); classes: the\n"
    "                                     labels that are some image's class\n"
    "                          rows without such a label are skipped; classes in label order\n"
    "  --arch A                resnet (layer1..layer4) or alexnet (features.N); default resnet\n"
    "  --width W               base channel width (default 32; resnet layer4 has 8W units)\n"
    "  --blocks N              resnet: basic blocks per stage, 1 or 2 (default 1)\n"
    "  --stem-pool on|off      resnet: maxpool after conv1 (default on; off doubles map sizes)\n"
    "  --last-stride 1|2       resnet: stride of layer4 (default 2; 1 doubles its map size)\n"
    "  --batchnorm on|off      BatchNorm after convolutions (default on)\n"
    "  --dropout on|off        dropout (p=0.5) before the classifier (default off)\n"
    "  --init-from MODEL.pt    fine-tune: start from a model nd-train saved (its architecture;\n"
    "                          the flags above may only repeat it), all weights copied except\n"
    "                          the final classifier, which is new for this task's classes\n"
    "  --epochs E              passes over the training images (default 10); 0 saves the\n"
    "                          untrained network (random-initialisation baseline), measured\n"
    "  --seed S                seed of weights, order and flips (default 1)\n"
    "  --input-size N          images are resized to NxN (default 128); use the same\n"
    "                          model.input_size when dissecting\n"
    "  --batch-size B          images per iteration (default 32)\n"
    "  --lr LR                 peak learning rate, cosine decay to 0 (default 0.05)\n"
    "  --optimizer sgd|adam    SGD with momentum 0.9, wd 5e-4, or Adam (default sgd)\n"
    "  --checkpoint-every K    also save FILE.ckpt-<iteration>.pt every K iterations (default 0)\n"
    "  --checkpoint-schedule S every (--checkpoint-every) or geometric (default every)\n"
    "  --checkpoints N         geometric: N checkpoints at iterations round(r^k), k = 0..N-1,\n"
    "                          from 1 to the last iteration (duplicates dropped)\n"
    "                          every checkpoint gets a record FILE.ckpt-<iteration>.json\n"
    "  --threads T             LibTorch and decode threads (default 0 = all cores)\n"
    "  --preprocess P          torchvision or netdissect normalisation (default torchvision)\n"
    "  --flip on|off           random horizontal flips (default on)\n"
    "  -h, --help              this help\n";

namespace {

namespace fs = std::filesystem;

constexpr double kPi = 3.14159265358979323846;

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
  if (o.epochs < 0) return InvalidArgument("--epochs: must be >= 0");
  if (o.task != "scene" && o.task != "object" && o.task != "texture") {
    return InvalidArgument("--task: '" + o.task + "' is not one of scene, object, texture");
  }
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
  if (o.checkpoint_schedule != "every" && o.checkpoint_schedule != "geometric") {
    return InvalidArgument("--checkpoint-schedule: '" + o.checkpoint_schedule +
                           "' is not one of every, geometric");
  }
  if (o.checkpoint_schedule == "geometric") {
    if (o.checkpoint_every != 0) {
      return InvalidArgument(
          "--checkpoint-every: not with --checkpoint-schedule geometric (use --checkpoints N)");
    }
    if (o.checkpoints < 2) {
      return InvalidArgument(
          "--checkpoints: --checkpoint-schedule geometric needs N >= 2 checkpoints, got " +
          std::to_string(o.checkpoints));
    }
  } else if (o.checkpoints != 0) {
    return InvalidArgument("--checkpoints: only with --checkpoint-schedule geometric");
  }
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
      .Int("--epochs", &o.epochs, 0, 100000)
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
      .String("--checkpoint-schedule", &o.checkpoint_schedule)
      .Int("--checkpoints", &o.checkpoints, 0, 1000000)
      .Int("--threads", &o.threads, 0, 1024)
      .String("--preprocess", &o.preprocess)
      .OnOff("--flip", &o.flip)
      .String("--task", &o.task)
      .String("--init-from", &o.init_from);
  ND_RETURN_IF_ERROR(parser.Parse(args));
  *help = parser.help();
  if (*help) return o;
  if (!o.init_from.empty()) {
    // The architecture is the source model's; explicit flags may only repeat it.
    auto source = LoadTrainedModel(o.init_from);
    if (!source.ok()) {
      return Status(source.status().code(), "--init-from " + source.status().message());
    }
    const ModelSpec& from = source->description.model;
    const std::string context = " conflicts with --init-from " + o.init_from + " (";
    auto on_off = [](bool b) { return std::string(b ? "on" : "off"); };
    struct Field {
      const char* flag;
      std::string given, source;
    };
    const Field fields[] = {
        {"--arch", o.model.arch, from.arch},
        {"--width", std::to_string(o.model.width), std::to_string(from.width)},
        {"--blocks", std::to_string(o.model.blocks), std::to_string(from.blocks)},
        {"--stem-pool", on_off(o.model.stem_pool), on_off(from.stem_pool)},
        {"--last-stride", std::to_string(o.model.last_stride), std::to_string(from.last_stride)},
        {"--batchnorm", on_off(o.model.batchnorm), on_off(from.batchnorm)},
        {"--dropout", on_off(o.model.dropout), on_off(from.dropout)},
    };
    for (const Field& f : fields) {
      if (parser.Seen(f.flag) && f.given != f.source) {
        return InvalidArgument(std::string(f.flag) + ": " + f.given + context + (f.flag + 2) + " " +
                               f.source + "); the architecture comes from the model");
      }
    }
    const int num_classes = o.model.num_classes;
    o.model = from;
    o.model.num_classes = num_classes;
  }
  ND_RETURN_IF_ERROR(ValidateTrainOptions(o));
  return o;
}

std::vector<int64_t> GeometricCheckpoints(int64_t total, int count) {
  std::vector<int64_t> out;
  if (total <= 0 || count < 2) return out;
  const double ratio = std::pow(static_cast<double>(total), 1.0 / (count - 1));
  for (int k = 0; k < count; ++k) {
    // The ends are exact: 1 and total, whatever pow's last bit.
    int64_t i = k == 0           ? 1
                : k == count - 1 ? total
                                 : static_cast<int64_t>(std::llround(std::pow(ratio, k)));
    i = std::clamp<int64_t>(i, 1, total);
    if (out.empty() || i > out.back()) out.push_back(i);
  }
  return out;
}

namespace {

// The class label of image i for the object task (see trainer.h): the c_object.csv label with the
// most pixels over all its object layers, lowest number on ties; 0 when it has no such pixel.
// REQUIRES: `dataset` was opened with the object category selected.
StatusOr<int> MajorityObjectLabel(const BrodenDataset& dataset, size_t i, int object) {
  ND_ASSIGN_OR_RETURN(ImageLabels labels, dataset.ReadLabels(i));
  std::vector<int64_t> pixels(dataset.num_labels(), 0);
  for (size_t k = 0; k < labels.layers.size(); ++k) {
    if (labels.layer_category[k] != object) continue;
    for (uint16_t v : labels.layers[k]) {
      if (v < pixels.size()) ++pixels[v];
    }
  }
  int best = 0;
  for (int l = 1; l < dataset.num_labels(); ++l) {
    if (dataset.labels()[l].coverage[object] < 0) continue;  // not in c_object.csv
    if (pixels[l] > (best > 0 ? pixels[best] : 0)) best = l;
  }
  return best;
}

}  // namespace

StatusOr<TrainingImages> LoadTrainingImages(const TrainOptions& options) {
  const std::string& dir = options.data_dir;
  const std::string& task = options.task;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("--data " + dir + ": no such directory");
  if (!fs::exists(fs::path(dir) / "index.csv", ec)) {
    return NotFound("--data " + dir + ": not a Broden dataset (no index.csv)");
  }
  auto opened = BrodenDataset::Open(dir);
  if (!opened.ok()) return opened.status().WithContext("--data " + dir);
  if (opened->CategoryIndex(task) < 0) {
    return InvalidArgument("--data " + dir + ": category.csv has no '" + task +
                           "' category (--task " + task + ")");
  }
  if (task == "object") {
    // Only the object layers are decoded.
    BrodenOptions only_objects;
    only_objects.categories = {"object"};
    opened = BrodenDataset::Open(dir, only_objects);
    if (!opened.ok()) return opened.status().WithContext("--data " + dir);
  }
  const BrodenDataset& dataset = *opened;
  const int category = dataset.CategoryIndex(task);
  const size_t rows = dataset.images().size();

  // The label of every row (0: none): scalar for scene and texture, by pixels for object.
  std::vector<int> row_label(rows, 0);
  if (task == "object") {
    ND_RETURN_IF_ERROR(ParallelFor(
        rows, WorkerCount(options.threads),
        [&](size_t i) -> Status {
          if (dataset.images()[i].pixel_layers[category].empty()) return Status::Ok();
          auto label = MajorityObjectLabel(dataset, i, category);
          if (!label.ok()) return label.status().WithContext("--data " + dir);
          row_label[i] = *label;
          return Status::Ok();
        },
        "nd-train"));
  } else {
    for (size_t i = 0; i < rows; ++i) {
      const std::vector<int>& scalars = dataset.images()[i].scalar_labels[category];
      if (!scalars.empty()) row_label[i] = scalars[0];
    }
  }

  // The classes, in label-number order: every label of c_<task>.csv, or for object those that
  // are some row's label.
  TrainingImages data;
  data.task = task;
  std::vector<int> class_of_label(dataset.num_labels(), -1);
  std::vector<uint8_t> is_some_class(dataset.num_labels(), 0);
  for (int l : row_label) {
    if (l > 0 && l < dataset.num_labels()) is_some_class[l] = 1;
  }
  for (const BrodenLabel& label : dataset.labels()) {
    if (!label.defined || label.coverage[category] < 0) continue;
    if (task == "object" && !is_some_class[label.number]) continue;
    class_of_label[label.number] = static_cast<int>(data.class_names.size());
    data.class_names.push_back(label.name);
    data.class_labels.push_back(label.number);
  }
  if (data.class_names.size() < 2) {
    return InvalidArgument("--data " + dir + ": " +
                           (task == "object" ? std::string("the images' object labels make ")
                                             : "c_" + task + ".csv names ") +
                           std::to_string(data.class_names.size()) + " " + task +
                           " class(es); need at least 2 classes");
  }

  // Rows to decode, in index.csv order, and their class.
  std::vector<size_t> train_rows, val_rows;
  std::vector<int64_t> train_y, val_y;
  for (size_t i = 0; i < rows; ++i) {
    const int l = row_label[i];
    if (l <= 0 || l >= dataset.num_labels() || class_of_label[l] < 0) {
      ++data.skipped_unlabelled;
      continue;
    }
    const bool val = dataset.images()[i].split == "val";
    (val ? val_rows : train_rows).push_back(i);
    (val ? val_y : train_y).push_back(class_of_label[l]);
  }
  if (train_rows.size() < 2) {
    return InvalidArgument("--data " + dir + ": " + std::to_string(train_rows.size()) +
                           " training image(s) with " + (task == "object" ? "an " : "a ") + task +
                           " label; need at least 2");
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

namespace {

// The architecture fields of a spec, for messages: "resnet width 4 blocks 1 stem_pool on ...".
std::string DescribeArchitecture(const ModelSpec& m) {
  auto on_off = [](bool b) { return b ? "on" : "off"; };
  return m.arch + " width " + std::to_string(m.width) + " blocks " + std::to_string(m.blocks) +
         " stem-pool " + on_off(m.stem_pool) + " last-stride " + std::to_string(m.last_stride) +
         " batchnorm " + on_off(m.batchnorm) + " dropout " + on_off(m.dropout);
}

// Copies every parameter and buffer of `source` into `target` except those under the module path
// `classifier`. Both must hold the same names and shapes otherwise. Errors name `path`.
Status CopyAllButClassifier(const torch::jit::Module& source, torch::jit::Module& target,
                            const std::string& classifier, const std::string& path) {
  std::map<std::string, torch::Tensor> from;
  for (const auto& p : source.named_parameters(/*recurse=*/true)) from[p.name] = p.value;
  for (const auto& b : source.named_buffers(/*recurse=*/true)) from[b.name] = b.value;
  const std::string prefix = classifier + ".";
  auto in_classifier = [&](const std::string& name) { return name.rfind(prefix, 0) == 0; };
  size_t copied = 0;
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, torch::Tensor to) -> Status {
    if (in_classifier(name)) return Status::Ok();
    const auto it = from.find(name);
    if (it == from.end()) return DataLoss("--init-from " + path + ": has no tensor '" + name + "'");
    if (!it->second.sizes().equals(to.sizes())) {
      return DataLoss("--init-from " + path + ": tensor '" + name + "' has shape " +
                      c10::str(it->second.sizes()) + ", the network needs " + c10::str(to.sizes()));
    }
    to.copy_(it->second);
    ++copied;
    return Status::Ok();
  };
  for (const auto& p : target.named_parameters(/*recurse=*/true)) {
    ND_RETURN_IF_ERROR(copy(p.name, p.value));
  }
  for (const auto& b : target.named_buffers(/*recurse=*/true)) {
    ND_RETURN_IF_ERROR(copy(b.name, b.value));
  }
  size_t source_kept = 0;
  for (const auto& [name, t] : from) source_kept += in_classifier(name) ? 0 : 1;
  if (copied != source_kept) {
    return DataLoss("--init-from " + path + ": holds " + std::to_string(source_kept) +
                    " tensors outside " + classifier + ", the network " + std::to_string(copied));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<TrainReport> TrainOn(const TrainingImages& data, const TrainOptions& options,
                              const TrainCallbacks& callbacks) {
  ND_RETURN_IF_ERROR(ValidateTrainOptions(options));
  ND_RETURN_IF_ERROR(CheckOutputDir(options.out_path));
  if (data.train_x.size(0) < 2) return InvalidArgument("need at least 2 training images");
  if (data.train_x.size(2) != options.input_size) {
    return InvalidArgument("images were loaded at " + std::to_string(data.train_x.size(2)) +
                           " px, --input-size is " + std::to_string(options.input_size));
  }
  if (data.task != options.task) {
    return InvalidArgument("images were loaded for --task " + data.task + ", --task is " +
                           options.task);
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

  // The source of a fine-tuned run, checked before anything is built.
  std::optional<TrainedModel> source;
  if (!options.init_from.empty()) {
    auto loaded = LoadTrainedModel(options.init_from);
    if (!loaded.ok()) {
      return Status(loaded.status().code(), "--init-from " + loaded.status().message());
    }
    ModelSpec from = loaded->description.model;
    from.num_classes = spec.num_classes;
    if (DescribeArchitecture(from) != DescribeArchitecture(spec)) {
      return InvalidArgument("--init-from " + options.init_from + ": the model is a " +
                             DescribeArchitecture(from) + "; the options ask for a " +
                             DescribeArchitecture(spec));
    }
    ND_ASSIGN_OR_RETURN(report.init_from_sha256, Sha256File(options.init_from));
    source = std::move(loaded).value();
  }
  const std::string json =
      FormatModelDescription(options, data.class_names, data.class_labels, report.init_from_sha256);

  torch::set_num_threads(options.threads > 0
                             ? options.threads
                             : std::max(1, static_cast<int>(std::thread::hardware_concurrency())));
  torch::manual_seed(options.seed);
  ND_ASSIGN_OR_RETURN(torch::jit::Module module, BuildModel(spec));
  if (source) {
    ND_RETURN_IF_ERROR(GuardTorch("--init-from " + options.init_from, [&]() -> Status {
      return CopyAllButClassifier(source->module, module, ClassifierName(spec), options.init_from);
    }));
    source.reset();
  }

  const std::string out = options.out_path;
  const int64_t n = data.train_x.size(0);
  const int64_t b = options.batch_size;
  // Batches per epoch; a last batch of a single image is dropped (BatchNorm needs two).
  const int64_t batches = n / b + (n % b >= 2 ? 1 : 0);
  const int64_t total = batches * options.epochs;
  std::vector<int64_t> schedule;  // geometric checkpoint iterations, increasing
  if (options.checkpoint_schedule == "geometric") {
    schedule = GeometricCheckpoints(total, options.checkpoints);
  }

  // Accuracy of the network as it is now, eval mode, no augmentation.
  const int eval_batch = 2 * options.batch_size;
  auto val_accuracy = [&]() {
    return report.val_images > 0 ? Accuracy(module, data.val_x, data.val_y, eval_batch) : 0.0;
  };
  // The record of a model saved at `iteration` to `model_path`.
  auto record = [&](int64_t iteration, double train_accuracy, double val, bool final,
                    const std::string& model_path) {
    TrainRecord r;
    r.model = fs::path(model_path).filename().string();
    r.final = final;
    r.iteration = iteration;
    r.total_iterations = total;
    r.epoch = static_cast<double>(iteration) / static_cast<double>(batches);
    r.train_accuracy = train_accuracy;
    r.val_accuracy = val;
    r.train_images = report.train_images;
    r.val_images = report.val_images;
    r.skipped_images = report.skipped_images;
    r.task = options.task;
    r.classes = data.class_names;
    r.class_labels = data.class_labels;
    r.seed = options.seed;
    r.init_from = options.init_from;
    r.init_from_sha256 = report.init_from_sha256;
    r.options = options;
    return r;
  };

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

    std::mt19937_64 rng(options.seed);
    std::vector<int64_t> order(n);
    int64_t iteration = 0;
    size_t next_scheduled = 0;  // into `schedule`
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
        bool checkpoint = options.checkpoint_every > 0 && iteration % options.checkpoint_every == 0;
        if (next_scheduled < schedule.size() && schedule[next_scheduled] == iteration) {
          checkpoint = true;
          ++next_scheduled;
        }
        if (checkpoint) {
          const std::string path = CheckpointPath(out, iteration);
          ND_RETURN_IF_ERROR(SaveModel(module, path, json));
          ND_RETURN_IF_ERROR(WriteTrainRecord(
              CheckpointRecordPath(out, iteration),
              record(iteration, Accuracy(module, data.train_x, data.train_y, eval_batch),
                     val_accuracy(), /*final=*/false, path)));
          report.checkpoints.push_back(path);
        }
      }
      EpochReport e;
      e.epoch = epoch;
      e.iterations = iteration;
      e.train_loss = loss_sum / static_cast<double>(batches);
      e.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
      e.val_accuracy = val_accuracy();
      e.seconds = seconds_since(epoch_start);
      report.epochs.push_back(e);
      if (callbacks.on_epoch) callbacks.on_epoch(e);
    }
    for (torch::Tensor p : params) p.requires_grad_(false);
    report.final_train_accuracy = Accuracy(module, data.train_x, data.train_y, eval_batch);
    // After the last epoch the network is what that epoch's validation measured.
    report.final_val_accuracy =
        report.epochs.empty() ? val_accuracy() : report.epochs.back().val_accuracy;
    ND_RETURN_IF_ERROR(SaveModel(module, out, json));
    return WriteTrainRecord(FinalRecordPath(out),
                            record(iteration, report.final_train_accuracy,
                                   report.final_val_accuracy, /*final=*/true, out));
  });
  ND_RETURN_IF_ERROR(status);
  report.train_seconds = seconds_since(start);
  message("saved " + out + " and " + FinalRecordPath(out));
  return report;
}

StatusOr<TrainReport> Train(const TrainOptions& options, const TrainCallbacks& callbacks) {
  ND_RETURN_IF_ERROR(ValidateTrainOptions(options));
  ND_RETURN_IF_ERROR(CheckOutputDir(options.out_path));
  const auto start = std::chrono::steady_clock::now();
  ND_ASSIGN_OR_RETURN(TrainingImages data, LoadTrainingImages(options));
  const double load_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (callbacks.on_message) {
    char line[256];
    std::snprintf(line, sizeof(line),
                  "loaded %lld train + %lld val images at %dx%d (%s task, %zu classes; %lld rows "
                  "without a label skipped) in %.1f s",
                  static_cast<long long>(data.train_x.size(0)),
                  static_cast<long long>(data.val_x.size(0)), options.input_size,
                  options.input_size, options.task.c_str(), data.class_names.size(),
                  static_cast<long long>(data.skipped_unlabelled), load_seconds);
    callbacks.on_message(line);
  }
  ND_ASSIGN_OR_RETURN(TrainReport report, TrainOn(data, options, callbacks));
  report.load_seconds = load_seconds;
  return report;
}

}  // namespace nd
