#include "tools/train/train_record_file.h"

#include <algorithm>
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <filesystem>
#include <sstream>
#include <utility>

#include "common/base/atomic_file.h"
#include "common/base/text_format.h"

namespace nd {
namespace {

namespace fs = std::filesystem;
namespace pt = boost::property_tree;

const char* Bool(bool b) { return b ? "true" : "false"; }

template <typename T>
std::string JsonArray(const std::vector<T>& items) {
  std::ostringstream j;
  j << "[";
  for (size_t k = 0; k < items.size(); ++k) {
    j << (k ? ", " : "");
    if constexpr (std::is_same_v<T, std::string>) {
      j << JsonString(items[k]);
    } else {
      j << items[k];
    }
  }
  j << "]";
  return j.str();
}

// Parses `text` as JSON; errors are "<what>: <reason>".
StatusOr<pt::ptree> ParseJson(const std::string& text, const std::string& what) {
  try {
    pt::ptree tree;
    std::istringstream in(text);
    pt::read_json(in, tree);
    return tree;
  } catch (const pt::ptree_error& e) {
    return DataLoss(what + ": not JSON (" + e.what() + ")");
  }
}

template <typename T>
std::vector<T> ReadArray(const pt::ptree& tree, const std::string& key) {
  std::vector<T> out;
  for (const auto& [name, item] : tree.get_child(key)) out.push_back(item.template get_value<T>());
  return out;
}

// The options object of a record; the keys are those of FormatOptions.
TrainOptions ReadOptions(const pt::ptree& o) {
  TrainOptions t;
  t.data_dir = o.get<std::string>("data");
  t.out_path = o.get<std::string>("out");
  t.model.arch = o.get<std::string>("arch");
  t.model.width = o.get<int>("width");
  t.model.blocks = o.get<int>("blocks");
  t.model.stem_pool = o.get<bool>("stem_pool");
  t.model.last_stride = o.get<int>("last_stride");
  t.model.batchnorm = o.get<bool>("batchnorm");
  t.model.dropout = o.get<bool>("dropout");
  t.epochs = o.get<int>("epochs");
  t.seed = o.get<uint64_t>("seed");
  t.input_size = o.get<int>("input_size");
  t.batch_size = o.get<int>("batch_size");
  t.lr = o.get<double>("lr");
  t.optimizer = o.get<std::string>("optimizer");
  t.checkpoint_every = o.get<int64_t>("checkpoint_every");
  t.checkpoint_schedule = o.get<std::string>("checkpoint_schedule");
  t.checkpoints = o.get<int>("checkpoints");
  t.threads = o.get<int>("threads");
  t.preprocess = o.get<std::string>("preprocess");
  t.flip = o.get<bool>("flip");
  t.task = o.get<std::string>("task");
  t.init_from = o.get<std::string>("init_from");
  return t;
}

std::string FormatOptions(const TrainOptions& o) {
  std::ostringstream j;
  j << "{\"data\": " << JsonString(o.data_dir) << ", \"out\": " << JsonString(o.out_path)
    << ", \"arch\": " << JsonString(o.model.arch) << ", \"width\": " << o.model.width
    << ", \"blocks\": " << o.model.blocks << ", \"stem_pool\": " << Bool(o.model.stem_pool)
    << ", \"last_stride\": " << o.model.last_stride
    << ", \"batchnorm\": " << Bool(o.model.batchnorm) << ", \"dropout\": " << Bool(o.model.dropout)
    << ", \"epochs\": " << o.epochs << ", \"seed\": " << o.seed
    << ", \"input_size\": " << o.input_size << ", \"batch_size\": " << o.batch_size
    << ", \"lr\": " << PythonFloatRepr(o.lr) << ", \"optimizer\": " << JsonString(o.optimizer)
    << ", \"checkpoint_every\": " << o.checkpoint_every
    << ", \"checkpoint_schedule\": " << JsonString(o.checkpoint_schedule)
    << ", \"checkpoints\": " << o.checkpoints << ", \"threads\": " << o.threads
    << ", \"preprocess\": " << JsonString(o.preprocess) << ", \"flip\": " << Bool(o.flip)
    << ", \"task\": " << JsonString(o.task) << ", \"init_from\": " << JsonString(o.init_from)
    << "}";
  return j.str();
}

}  // namespace

std::string FormatModelDescription(const TrainOptions& o, const std::vector<std::string>& classes,
                                   const std::vector<int>& class_labels,
                                   const std::string& init_from_sha256) {
  std::ostringstream j;
  j << "{\"tool\": \"nd-train\", \"arch\": " << JsonString(o.model.arch)
    << ", \"width\": " << o.model.width << ", \"blocks\": " << o.model.blocks
    << ", \"stem_pool\": " << Bool(o.model.stem_pool)
    << ", \"last_stride\": " << o.model.last_stride
    << ", \"batchnorm\": " << Bool(o.model.batchnorm) << ", \"dropout\": " << Bool(o.model.dropout)
    << ", \"input_size\": " << o.input_size << ", \"preprocess\": " << JsonString(o.preprocess)
    << ", \"seed\": " << o.seed << ", \"epochs\": " << o.epochs
    << ", \"classes\": " << JsonArray(classes) << ", \"class_labels\": " << JsonArray(class_labels);
  // Optional keys: absent in a default run, so its bytes are what they were before them.
  if (o.task != "scene") j << ", \"task\": " << JsonString(o.task);
  if (!o.init_from.empty()) {
    j << ", \"init_from\": " << JsonString(o.init_from)
      << ", \"init_from_sha256\": " << JsonString(init_from_sha256);
  }
  j << "}\n";
  return j.str();
}

StatusOr<ModelDescription> ParseModelDescription(const std::string& json, const std::string& what) {
  ND_ASSIGN_OR_RETURN(pt::ptree tree, ParseJson(json, what));
  try {
    if (tree.get<std::string>("tool", "") != "nd-train") {
      return DataLoss(what + ": not an nd-train model description (no \"tool\": \"nd-train\")");
    }
    ModelDescription d;
    d.model.arch = tree.get<std::string>("arch");
    d.model.width = tree.get<int>("width");
    d.model.blocks = tree.get<int>("blocks");
    d.model.stem_pool = tree.get<bool>("stem_pool");
    d.model.last_stride = tree.get<int>("last_stride");
    d.model.batchnorm = tree.get<bool>("batchnorm");
    d.model.dropout = tree.get<bool>("dropout");
    d.input_size = tree.get<int>("input_size");
    d.preprocess = tree.get<std::string>("preprocess");
    d.seed = tree.get<uint64_t>("seed");
    d.epochs = tree.get<int>("epochs");
    d.classes = ReadArray<std::string>(tree, "classes");
    d.class_labels = ReadArray<int>(tree, "class_labels");
    d.task = tree.get<std::string>("task", "scene");
    d.init_from = tree.get<std::string>("init_from", "");
    d.init_from_sha256 = tree.get<std::string>("init_from_sha256", "");
    d.model.num_classes = static_cast<int>(d.classes.size());
    return d;
  } catch (const pt::ptree_error& e) {
    return DataLoss(what + ": " + e.what());
  }
}

std::string FinalRecordPath(const std::string& out) { return out + ".json"; }

std::string CheckpointPath(const std::string& out, int64_t iteration) {
  return out + ".ckpt-" + std::to_string(iteration) + ".pt";
}

std::string CheckpointRecordPath(const std::string& out, int64_t iteration) {
  return out + ".ckpt-" + std::to_string(iteration) + ".json";
}

std::string TrainRecordPathFor(const std::string& model_path) {
  const std::string marker = ".ckpt-", ext = ".pt";
  const size_t at = model_path.rfind(marker);
  if (at != std::string::npos && model_path.size() > at + marker.size() + ext.size() &&
      model_path.compare(model_path.size() - ext.size(), ext.size(), ext) == 0) {
    const std::string digits =
        model_path.substr(at + marker.size(), model_path.size() - ext.size() - at - marker.size());
    if (std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
      return model_path.substr(0, model_path.size() - ext.size()) + ".json";
  }
  return model_path + ".json";
}

std::string FormatTrainRecord(const TrainRecord& r) {
  std::ostringstream j;
  j << "{\"format\": \"nd-train-record\", \"version\": 1, \"model\": " << JsonString(r.model)
    << ", \"final\": " << Bool(r.final) << ", \"iteration\": " << r.iteration
    << ", \"total_iterations\": " << r.total_iterations
    << ", \"epoch\": " << PythonFloatRepr(r.epoch)
    << ", \"train_accuracy\": " << PythonFloatRepr(r.train_accuracy)
    << ", \"val_accuracy\": " << PythonFloatRepr(r.val_accuracy)
    << ", \"train_images\": " << r.train_images << ", \"val_images\": " << r.val_images
    << ", \"skipped_images\": " << r.skipped_images << ", \"task\": " << JsonString(r.task)
    << ", \"classes\": " << JsonArray(r.classes)
    << ", \"class_labels\": " << JsonArray(r.class_labels) << ", \"seed\": " << r.seed
    << ", \"init_from\": " << JsonString(r.init_from)
    << ", \"init_from_sha256\": " << JsonString(r.init_from_sha256)
    << ", \"options\": " << FormatOptions(r.options) << "}\n";
  return j.str();
}

Status WriteTrainRecord(const std::string& path, const TrainRecord& record) {
  return WriteFileAtomically(path, FormatTrainRecord(record));
}

StatusOr<TrainRecord> ReadTrainRecord(const std::string& path) {
  ND_ASSIGN_OR_RETURN(std::string text, ReadFileText(path));
  ND_ASSIGN_OR_RETURN(pt::ptree tree, ParseJson(text, path));
  try {
    if (tree.get<std::string>("format", "") != "nd-train-record") {
      return DataLoss(path + ": not an nd-train record (no \"format\": \"nd-train-record\")");
    }
    const int version = tree.get<int>("version");
    if (version != 1) {
      return DataLoss(path + ": record version " + std::to_string(version) +
                      " is not supported (this reader knows version 1)");
    }
    TrainRecord r;
    r.path = path;
    r.model = tree.get<std::string>("model");
    r.final = tree.get<bool>("final");
    r.iteration = tree.get<int64_t>("iteration");
    r.total_iterations = tree.get<int64_t>("total_iterations");
    r.epoch = tree.get<double>("epoch");
    r.train_accuracy = tree.get<double>("train_accuracy");
    r.val_accuracy = tree.get<double>("val_accuracy");
    r.train_images = tree.get<int64_t>("train_images");
    r.val_images = tree.get<int64_t>("val_images");
    r.skipped_images = tree.get<int64_t>("skipped_images");
    r.task = tree.get<std::string>("task");
    r.classes = ReadArray<std::string>(tree, "classes");
    r.class_labels = ReadArray<int>(tree, "class_labels");
    r.seed = tree.get<uint64_t>("seed");
    r.init_from = tree.get<std::string>("init_from");
    r.init_from_sha256 = tree.get<std::string>("init_from_sha256");
    r.options = ReadOptions(tree.get_child("options"));
    return r;
  } catch (const pt::ptree_error& e) {
    return DataLoss(path + ": " + e.what());
  }
}

StatusOr<std::vector<TrainRecord>> ListTrainRecords(const std::string& out) {
  const fs::path out_path(out);
  const fs::path dir = out_path.parent_path().empty() ? fs::path(".") : out_path.parent_path();
  const std::string prefix = out_path.filename().string() + ".ckpt-";
  std::vector<std::pair<int64_t, std::string>> checkpoints;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() + 5 || name.compare(0, prefix.size(), prefix) != 0 ||
        name.compare(name.size() - 5, 5, ".json") != 0) {
      continue;
    }
    const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - 5);
    if (digits.empty() || digits.size() > 18 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    checkpoints.emplace_back(std::stoll(digits), (dir / name).string());
  }
  std::sort(checkpoints.begin(), checkpoints.end());
  std::vector<TrainRecord> records;
  for (const auto& [iteration, path] : checkpoints) {
    ND_ASSIGN_OR_RETURN(TrainRecord r, ReadTrainRecord(path));
    records.push_back(std::move(r));
  }
  if (fs::exists(FinalRecordPath(out), ec)) {
    ND_ASSIGN_OR_RETURN(TrainRecord r, ReadTrainRecord(FinalRecordPath(out)));
    records.push_back(std::move(r));
  }
  if (records.empty())
    return NotFound(out + ": no training records (" + out + ".json, " + prefix +
                    "<iteration>.json)");
  return records;
}

}  // namespace nd
