// ModelRunner: loads a TorchScript model once and runs batches through it, returning the
// activations of the configured layers from one forward pass.
//
// Ownership: a ModelRunner owns its torch::jit::Module (and the capture method added to the
// module's in-memory class, see layer_capture.h); it is move-only. The model file is read once by
// Load and never written. Thread-compatible: one thread at a time may call Run; LibTorch's own
// intra-op threads (torch::set_num_threads) are the caller's choice. Several ModelRunners (each
// loaded from the file on its own) may run concurrently in different threads, on the same device
// or different ones.
//
// On CUDA, each ModelRunner enqueues all its work on its own stream from LibTorch's stream pool
// (obtained through c10's device-generic stream API, so this file needs no CUDA headers and
// builds against CPU-only LibTorch); two runners on one GPU therefore overlap one's copies with
// the other's kernels. The input is staged in pinned (page-locked) host memory and copied with
// non_blocking; outputs are converted to float32 on the device and
// copied back into pinned host buffers; the stream is synchronised once per Run, after the last
// copy. Run does not return before its outputs are on the host, so a single runner leaves its GPU
// idle while its caller stages the next batch (pinning the input); a second runner on the same
// GPU (model.device = ["cuda:0", "cuda:0"]) fills that gap. On the CPU none of this applies and
// Run is a plain forward pass.
// No exception crosses this API: LibTorch errors come back as a Status naming the model file.
#pragma once

#include <c10/core/Stream.h>
#include <torch/script.h>

#include <optional>
#include <string>
#include <vector>

#include "common/base/status.h"

namespace nd {

struct ModelOptions {
  // A TorchScript file (torch.jit.trace or torch.jit.script, then .save).
  std::string path;
  // Module paths as named in the model ("layer4", "features.10", "fc"). At least one.
  std::vector<std::string> layers;
  // "auto" (CUDA when torch::cuda::is_available(), else CPU), "cpu", "cuda" or "cuda:N".
  std::string device = "auto";
  // "fp32", "fp16" or "bf16". fp16/bf16 run the forward under CUDA autocast (weights stay fp32,
  // outputs are converted to fp32). On CPU they fall back to fp32 with a warning on the log (CPU
  // half-precision convolutions are slow or missing); precision() reports what is used.
  std::string precision = "fp32";
  // Weights and input in channels-last memory format (faster convolutions on recent GPUs).
  bool channels_last = false;
};

class ModelRunner {
 public:
  // Loads options.path, puts it in eval mode on the chosen device and prepares the capture of
  // options.layers. Errors (one line, naming the file): missing file; "model.pt: not a
  // TorchScript file (<reason>)" for garbage or truncated files; "layer 'layer9' not found in
  // model.pt; module paths are: conv1, bn1, ..."; a bad device or precision; CUDA requested but
  // not available.
  [[nodiscard]] static StatusOr<ModelRunner> Load(const ModelOptions& options);

  ModelRunner(ModelRunner&&) = default;
  ModelRunner& operator=(ModelRunner&&) = default;
  ModelRunner(const ModelRunner&) = delete;
  ModelRunner& operator=(const ModelRunner&) = delete;
  ~ModelRunner() = default;

  // One forward pass over `input`; returns, in the order of layers(), one float32, contiguous CPU
  // tensor of shape [n, units, h, w] per layer (a layer with output [n, units] gives
  // [n, units, 1, 1]). Outputs come back as float32 also when the cache stores float16: a plain
  // float16 conversion on the device would lose the values below 2^-14 that the cache's per-unit
  // scaling keeps (cache/FORMAT.md). On CUDA the returned tensors live in pinned host memory. Runs
  // without autograd, under InferenceMode: the returned tensors are inference tensors: read, copy
  // and convert them freely, but LibTorch refuses in-place changes to them outside an InferenceMode
  // guard. REQUIRES: input is a defined float32 CPU tensor of shape [n, 3, H, W] with n >= 1; any
  // other input is an InvalidArgument error, as is a layer output of another rank.
  [[nodiscard]] StatusOr<std::vector<torch::Tensor>> Run(const torch::Tensor& input);

  // Every submodule path of the model, depth first ("conv1", "bn1", ..., "layer1", "layer1.0").
  std::vector<std::string> ModulePaths() const;
  const std::vector<std::string>& layers() const { return options_.layers; }
  // The device the model runs on ("cpu", "cuda:0") and the precision actually used.
  std::string device() const { return device_.str(); }
  const std::string& precision() const { return precision_; }
  const std::string& path() const { return options_.path; }
  bool channels_last() const { return options_.channels_last; }

  // The loaded module, for tools (benchmarks) that call its methods directly.
  torch::jit::Module& module() { return module_; }

 private:
  ModelRunner(ModelOptions options, torch::jit::Module module, torch::Device device,
              std::string precision, std::string capture_method, std::optional<c10::Stream> stream);

  // The CUDA part of Run (inside its guards); `input` is checked.
  [[nodiscard]] Status RunCuda(const torch::Tensor& input, std::vector<torch::Tensor>* outputs);

  ModelOptions options_;
  torch::jit::Module module_;
  torch::Device device_;
  std::string precision_;              // "fp32", "fp16" or "bf16" as used (after any CPU fallback)
  std::string capture_method_;         // name of the method AddCaptureMethod added
  std::optional<c10::Stream> stream_;  // CUDA only: this runner's stream from the pool
};

// Benchmark helper: mean wall-clock seconds of one plain `forward` of runner's module (no layer
// capture) on `input`, over `repeats` timed calls after 2 untimed warm-up calls (TorchScript's
// profiling executor optimises the graph during the first calls). Uses the runner's device,
// precision and memory format and waits for the device before each clock read.
// REQUIRES: repeats >= 1; input as for ModelRunner::Run.
[[nodiscard]] StatusOr<double> TimeBareForward(ModelRunner& runner, const torch::Tensor& input,
                                               int repeats);

}  // namespace nd
