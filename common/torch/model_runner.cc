#include "common/torch/model_runner.h"

#include <ATen/autocast_mode.h>
#include <c10/core/InferenceMode.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <utility>

#include "common/base/log.h"
#include "common/torch/layer_capture.h"
#include "common/torch/torch_status.h"

namespace nd {
namespace {

// Enables CUDA autocast to `dtype` for its lifetime (nested use is fine); a no-op when disabled.
// The autocast API changed in LibTorch 2.4 (per-device-type functions); both are supported.
class CudaAutocastGuard {
 public:
  CudaAutocastGuard(bool enabled, at::ScalarType dtype) : enabled_(enabled) {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    previous_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    previous_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
    previous_enabled_ = at::autocast::is_enabled();
    previous_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(dtype);
#endif
    at::autocast::increment_nesting();
  }
  ~CudaAutocastGuard() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, previous_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, previous_dtype_);
#else
    at::autocast::set_enabled(previous_enabled_);
    at::autocast::set_autocast_gpu_dtype(previous_dtype_);
#endif
  }
  CudaAutocastGuard(const CudaAutocastGuard&) = delete;
  CudaAutocastGuard& operator=(const CudaAutocastGuard&) = delete;

 private:
  bool enabled_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kHalf;
};

at::ScalarType AutocastDtype(const std::string& precision) {
  return precision == "bf16" ? at::kBFloat16 : at::kHalf;
}

Status CheckInput(const std::string& path, const torch::Tensor& input) {
  if (!input.defined()) return InvalidArgument(path + ": input tensor is undefined");
  if (input.dim() != 4 || input.size(1) != 3 || input.size(0) < 1) {
    return InvalidArgument(path + ": input must have shape [n>=1, 3, H, W], got " +
                           c10::str(input.sizes()));
  }
  if (input.scalar_type() != at::kFloat) {
    return InvalidArgument(path + ": input must be float32, got " +
                           std::string(c10::toString(input.scalar_type())));
  }
  if (!input.device().is_cpu()) {
    return InvalidArgument(path + ": input must be on the CPU, got " + input.device().str());
  }
  return Status::Ok();
}

// Moves a checked CPU input to the model's device and memory format.
torch::Tensor PrepareInput(const torch::Tensor& input, const torch::Device& device,
                           bool channels_last) {
  torch::Tensor x = input.to(device);
  if (channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
  return x;
}

}  // namespace

ModelRunner::ModelRunner(ModelOptions options, torch::jit::Module module, torch::Device device,
                         std::string precision, std::string capture_method,
                         std::optional<c10::Stream> stream)
    : options_(std::move(options)),
      module_(std::move(module)),
      device_(device),
      precision_(std::move(precision)),
      capture_method_(std::move(capture_method)),
      stream_(stream) {}

StatusOr<ModelRunner> ModelRunner::Load(const ModelOptions& options) {
  const std::string& path = options.path;
  if (path.empty()) return InvalidArgument("model: path is empty");
  if (options.layers.empty()) return InvalidArgument(path + ": no layers requested");
  if (options.precision != "fp32" && options.precision != "fp16" && options.precision != "bf16") {
    return InvalidArgument(path + ": precision '" + options.precision +
                           "' is not one of fp32, fp16, bf16");
  }
  ND_ASSIGN_OR_RETURN(torch::Device device,
                      ParseTorchDevice(options.device, /*allow_auto=*/true,
                                       path + ": device '" + options.device + "'",
                                       "use device = \"auto\" or \"cpu\""));
  std::string precision = options.precision;
  if (precision != "fp32" && !device.is_cuda()) {
    LogWarning(path + ": precision " + precision +
               " needs CUDA autocast; running on the CPU in fp32 instead");
    precision = "fp32";
  }
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) {
      const int err = errno;
      return err == ENOENT ? NotFound(path + ": no such file")
                           : IoError(path + ": cannot open (" + std::strerror(err) + ")");
    }
  }

  torch::jit::Module module;
  std::string capture_method;
  std::optional<c10::Stream> stream;
  // torch::jit::load reads the file and never writes it.
  ND_RETURN_IF_ERROR(GuardTorchWith(
      [&]() -> Status {
        module = torch::jit::load(path, torch::Device(torch::kCPU));
        return Status::Ok();
      },
      [&](const std::string& reason) {
        return DataLoss(path + ": not a TorchScript file (" + reason + ")");
      }));
  ND_RETURN_IF_ERROR(GuardTorch(path + ": preparing the model", [&]() -> Status {
    module.eval();
    ND_ASSIGN_OR_RETURN(capture_method, AddCaptureMethod(module, options.layers, path));
    if (!device.is_cpu()) module.to(device);
    if (options.channels_last) {
      for (torch::Tensor p : module.parameters()) {
        if (p.dim() == 4) p.set_data(p.contiguous(at::MemoryFormat::ChannelsLast));
      }
    }
    if (device.is_cuda()) {
      // c10's device-generic interface to the CUDA stream pool: no CUDA headers needed, and only
      // reached when CUDA is present (ParseDevice checked torch::cuda::is_available()).
      c10::impl::VirtualGuardImpl cuda(c10::DeviceType::CUDA);
      stream = cuda.getStreamFromGlobalPool(device, /*isHighPriority=*/false);
    }
    return Status::Ok();
  }));
  return ModelRunner(options, std::move(module), device, std::move(precision),
                     std::move(capture_method), stream);
}

namespace {

// The captured values as 4-d device tensors, in layer order; checks the count and the ranks.
Status CollectOutputs(const c10::IValue& result, const std::vector<std::string>& layers,
                      const std::string& path, std::vector<torch::Tensor>* out) {
  const auto& elements = result.toTupleRef().elements();
  if (elements.size() != layers.size()) {
    return Internal(path + ": capture returned " + std::to_string(elements.size()) +
                    " values for " + std::to_string(layers.size()) + " layers");
  }
  out->reserve(elements.size());
  for (size_t i = 0; i < elements.size(); ++i) {
    torch::Tensor t = elements[i].toTensor();
    if (t.dim() == 2) {
      t = t.reshape({t.size(0), t.size(1), 1, 1});
    } else if (t.dim() != 4) {
      return InvalidArgument("layer '" + layers[i] + "' in " + path +
                             " outputs a tensor of shape " + c10::str(t.sizes()) +
                             "; only [n, units, h, w] and [n, units] can be dissected");
    }
    out->push_back(std::move(t));
  }
  return Status::Ok();
}

}  // namespace

StatusOr<std::vector<torch::Tensor>> ModelRunner::Run(const torch::Tensor& input) {
  const std::string& path = options_.path;
  ND_RETURN_IF_ERROR(CheckInput(path, input));
  std::vector<torch::Tensor> outputs;
  ND_RETURN_IF_ERROR(GuardTorch(path + ": forward", [&]() -> Status {
    c10::InferenceMode inference;
    if (device_.is_cuda()) return RunCuda(input, &outputs);
    const torch::Tensor x = PrepareInput(input, device_, options_.channels_last);
    const c10::IValue result = module_.get_method(capture_method_)({x});
    std::vector<torch::Tensor> captured;
    ND_RETURN_IF_ERROR(CollectOutputs(result, options_.layers, path, &captured));
    outputs.reserve(captured.size());
    for (const torch::Tensor& t : captured) {
      outputs.push_back(t.to(torch::kCPU, torch::kFloat).contiguous());
    }
    return Status::Ok();
  }));
  return outputs;
}

Status ModelRunner::RunCuda(const torch::Tensor& input, std::vector<torch::Tensor>* outputs) {
  // Everything below is enqueued on this runner's stream; the only wait is the stream
  // synchronisation after the last copy back.
  c10::StreamGuard on_stream(*stream_);
  std::vector<torch::Tensor> captured;
  {
    CudaAutocastGuard autocast(precision_ != "fp32", AutocastDtype(precision_));
    // pin_memory() copies into a block of LibTorch's caching pinned-memory allocator, which keeps
    // the block until the asynchronous copy that reads it has finished.
    const torch::Tensor pinned = input.is_pinned() ? input : input.pin_memory();
    torch::Tensor x = pinned.to(device_, torch::kFloat, /*non_blocking=*/true);
    if (options_.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    const c10::IValue result = module_.get_method(capture_method_)({x});
    ND_RETURN_IF_ERROR(CollectOutputs(result, options_.layers, options_.path, &captured));
  }
  const torch::TensorOptions pinned_host =
      torch::TensorOptions().device(torch::kCPU).pinned_memory(true);
  outputs->reserve(captured.size());
  for (const torch::Tensor& t : captured) {
    const torch::Tensor converted = t.to(torch::kFloat).contiguous();
    torch::Tensor host = torch::empty(converted.sizes(), pinned_host.dtype(converted.dtype()));
    host.copy_(converted, /*non_blocking=*/true);
    outputs->push_back(std::move(host));
  }
  stream_->synchronize();
  return Status::Ok();
}

std::vector<std::string> ModelRunner::ModulePaths() const { return ListModulePaths(module_); }

StatusOr<double> TimeBareForward(ModelRunner& runner, const torch::Tensor& input, int repeats) {
  const std::string& path = runner.path();
  if (repeats < 1) return InvalidArgument(path + ": repeats must be >= 1");
  ND_RETURN_IF_ERROR(CheckInput(path, input));
  const torch::Device device(runner.device());
  const bool channels_last = runner.channels_last();
  double seconds = 0;
  ND_RETURN_IF_ERROR(GuardTorch(path + ": timing forward", [&]() -> Status {
    c10::InferenceMode inference;
    CudaAutocastGuard autocast(device.is_cuda() && runner.precision() != "fp32",
                               AutocastDtype(runner.precision()));
    const torch::Tensor x = PrepareInput(input, device, channels_last);
    torch::jit::Module& module = runner.module();
    auto sync = [&] {
      if (device.is_cuda()) torch::cuda::synchronize(device.index());
    };
    constexpr int kWarmup = 2;
    for (int i = 0; i < kWarmup; ++i) module.forward({x});
    sync();
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < repeats; ++i) module.forward({x});
    sync();
    const auto stop = std::chrono::steady_clock::now();
    seconds = std::chrono::duration<double>(stop - start).count() / repeats;
    return Status::Ok();
  }));
  return seconds;
}

}  // namespace nd
