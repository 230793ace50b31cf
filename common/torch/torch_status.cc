#include "common/torch/torch_status.h"

#include <torch/cuda.h>

namespace nd {

StatusOr<c10::Device> ParseTorchDevice(const std::string& spec, bool allow_auto,
                                       const std::string& what, const std::string& remedy) {
  const std::string names = allow_auto ? "auto, cpu, cuda, cuda:N" : "cpu, cuda, cuda:N";
  if (spec == "cpu") return c10::Device(c10::kCPU);
  bool available = false;
  int count = 0;
  try {
    available = torch::cuda::is_available();
    count = available ? static_cast<int>(torch::cuda::device_count()) : 0;
  } catch (const std::exception& e) {
    return FailedPrecondition(what + ": cannot query CUDA: " + TorchErrorLine(e.what()));
  }
  if (allow_auto && spec == "auto") {
    return available ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  }
  if (spec != "cuda" && spec.rfind("cuda:", 0) != 0)
    return InvalidArgument(what + " is not one of " + names);
  int index = 0;
  if (spec != "cuda") {
    const std::string digits = spec.substr(5);
    if (digits.empty() || digits.size() > 4 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument(what + " is not one of " + names);
    }
    index = std::stoi(digits);
  }
  if (!available) {
    return FailedPrecondition(what +
                              " requested but CUDA is not available in this LibTorch build or "
                              "machine; " +
                              remedy);
  }
  if (index >= count) {
    return FailedPrecondition(what + " does not exist; this machine has " + std::to_string(count) +
                              " CUDA device(s)");
  }
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
}

}  // namespace nd
