// Graph surgery that makes an unmodified TorchScript module return the outputs of chosen layers.
//
// How it works (see DESIGN.md, "LibTorch facts"): the module's `forward` graph is copied and
// fully inlined; every node of the inlined graph is mapped to the module path it came from through
// its inlined call stack (instance names of the calls, outermost first, skipping calls on the same
// module ("SELF") and unnamed ones). A layer's output is a tensor value produced by a node inside
// the layer's path (the path itself or a descendant) and used outside it, the graph's `return`
// included. If a module is called several times, the last call's output is taken (what a forward
// hook that overwrites its slot would see). A Sequential and its last child therefore share an
// output ("layer4" and "layer4.1" of a torchvision ResNet). A captured value that the graph may
// later modify in place (e.g. a conv followed by ReLU(inplace=True)) is cloned right where it is
// produced, so the capture holds the value the module returned. The graph then returns a tuple of
// the captured values instead of forward's result, dead code after the last capture is removed,
// and the graph is added to the module's class as a new method. The model file is never written;
// the module's other methods are unchanged.
//
// Works for traced and scripted modules. Thread-compatible: callers serialise calls that touch
// the same module.
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

#include "common/base/status.h"

namespace nd {

// Dotted paths of every submodule of `module` in definition order, depth first ("conv1", "bn1",
// "relu", "maxpool", "layer1", "layer1.0", "layer1.0.conv1", ...). The root is not listed.
std::vector<std::string> ListModulePaths(const torch::jit::Module& module);

// Adds to `module`'s class a method that takes forward's inputs and returns a tuple with one
// tensor per entry of `layers`, in that order, and returns the method's name (it starts with
// "nd_capture"; an existing name is never reused). `model_label` names the model in errors,
// normally its file path. Errors (one line): an unknown layer ("layer 'layer9' not found in
// model.pt; module paths are: conv1, bn1, ..."), a layer that forward never calls, a layer whose
// output is not a tensor or is only computed inside control flow, and LibTorch failures.
// REQUIRES: `layers` is not empty. The module must not be executing concurrently.
[[nodiscard]] StatusOr<std::string> AddCaptureMethod(torch::jit::Module& module,
                                                     const std::vector<std::string>& layers,
                                                     const std::string& model_label);

}  // namespace nd
