// nd-train: trains a small CNN on a Broden-format dataset's scene, object or texture labels and
// saves it as a TorchScript file with a training record (see trainer.h, train_record.h). Exit code
// 0 on success; 2 with one line "nd-train: <reason>" for bad flags; 1 for failures while loading,
// training or saving.
#include <cstdio>
#include <string>
#include <vector>

#include "common/base/log.h"
#include "common/base/status.h"
#include "tools/train/trainer.h"

namespace {

int Fail(const nd::Status& s) {
  std::fprintf(stderr, "nd-train: %s\n", s.message().c_str());
  return s.code() == nd::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  nd::SetLogComponent("nd-train");
  bool help = false;
  auto options = nd::ParseTrainArgs(std::vector<std::string>(argv + 1, argv + argc), &help);
  if (!options.ok()) return Fail(options.status());
  if (help) {
    std::fputs(nd::kTrainUsage, stdout);
    return 0;
  }
  const nd::TrainOptions& o = *options;
  std::string layers;
  const std::vector<std::string> names = nd::ConvLayerNames(o.model);
  const std::vector<int> units = nd::ConvLayerUnits(o.model);
  for (size_t i = 0; i < names.size(); ++i) {
    layers += (i ? ", " : "") + names[i] + " (" + std::to_string(units[i]) + " units)";
  }
  std::printf("nd-train: %s width %d, input %dx%d; conv layers: %s\n", o.model.arch.c_str(),
              o.model.width, o.input_size, o.input_size, layers.c_str());
  std::fflush(stdout);

  nd::TrainCallbacks callbacks;
  callbacks.on_message = [](const std::string& line) {
    std::printf("nd-train: %s\n", line.c_str());
    std::fflush(stdout);
  };
  callbacks.on_epoch = [&](const nd::EpochReport& e) {
    std::printf(
        "epoch %d/%d: iterations %lld, loss %.4f, train accuracy %.4f, val accuracy %.4f"
        " (%.1f s)\n",
        e.epoch, o.epochs, static_cast<long long>(e.iterations), e.train_loss, e.train_accuracy,
        e.val_accuracy, e.seconds);
    std::fflush(stdout);
  };
  auto report = nd::Train(o, callbacks);
  if (!report.ok()) return Fail(report.status());
  std::printf(
      "final: train accuracy %.4f (%lld images), val accuracy %.4f (%lld images), "
      "%lld parameters, %zu checkpoints, load %.1f s, train %.1f s\n",
      report->final_train_accuracy, static_cast<long long>(report->train_images),
      report->final_val_accuracy, static_cast<long long>(report->val_images),
      static_cast<long long>(report->parameters), report->checkpoints.size(), report->load_seconds,
      report->train_seconds);
  return 0;
}
