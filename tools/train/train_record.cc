#include "tools/train/train_record.h"

#include <filesystem>

#include "common/torch/torch_status.h"

namespace nd {

namespace fs = std::filesystem;

StatusOr<TrainedModel> LoadTrainedModel(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return NotFound(path + ": no such file");
  TrainedModel out;
  torch::jit::ExtraFilesMap extra{{"nd_train.json", ""}};
  ND_RETURN_IF_ERROR(GuardTorch(
      path + ": cannot load the model",
      [&]() -> Status {
        out.module = torch::jit::load(path, torch::kCPU, extra);
        return Status::Ok();
      },
      StatusCode::kDataLoss));
  if (extra["nd_train.json"].empty()) {
    return DataLoss(path + ": has no extra/nd_train.json (not a model nd-train saved)");
  }
  ND_ASSIGN_OR_RETURN(out.description,
                      ParseModelDescription(extra["nd_train.json"], path + ": nd_train.json"));
  return out;
}

}  // namespace nd
