// Loading a model nd-train saved (LibTorch): the weights and the model description in its
// extra/nd_train.json. The JSON formats, their writer and reader are train_record_file.h
// (LibTorch-free); this header adds what needs LibTorch.
//
// Thread-safety: LoadTrainedModel is safe to call concurrently on different files.
#pragma once

#include <torch/script.h>

#include <string>

#include "common/base/status.h"
#include "tools/train/train_record_file.h"

namespace nd {

// Loads a model nd-train saved (on the CPU) and its description. Errors name `path`: no such file,
// not a TorchScript file, no extra/nd_train.json (not saved by nd-train), a malformed one.
struct TrainedModel {
  torch::jit::Module module;
  ModelDescription description;
};
[[nodiscard]] StatusOr<TrainedModel> LoadTrainedModel(const std::string& path);

}  // namespace nd
