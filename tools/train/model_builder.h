// Builds the small CNNs that nd-train trains, directly as TorchScript modules (torch::jit::Module),
// so that a trained network is saved with Module::save as an ordinary TorchScript file: it loads
// with torch.jit.load in Python and with the pipeline's ModelRunner like any exported model.
//
// Every layer is a nested submodule with its own `forward` defined in TorchScript source, named as
// torchvision names them, so module paths ("layer4", "layer4.0.conv2", "features.10") work for the
// pipeline's capture by module path:
//
//   resnet  (torchvision ResNet with BasicBlocks, narrower):
//     conv1 (7x7, stride 2), bn1, relu, maxpool (3x3, stride 2; absent when stem_pool is off),
//     layer1..layer4: Sequential of `blocks` BasicBlocks named layer<k>.0, layer<k>.1, each with
//       conv1, bn1, relu, conv2, bn2 and, where the shape changes, downsample (.0 conv 1x1, .1 bn);
//       widths W, 2W, 4W, 8W; strides 1, 2, 2, last_stride (2 as torchvision, or 1),
//     avgpool (global), [dropout (p = 0.5)], fc.
//     Input S gives layer4 maps of S/32 x S/32; twice that with last_stride 1 (layer4 then keeps
//     layer3's resolution, ~1.5x the compute of the whole network at W = 32), and twice again
//     without the stem pool (~3x the compute: every stage runs at 4x the pixels).
//   alexnet (torchvision AlexNet, narrower, conv widths W, 3W, 6W, 4W, 4W):
//     features: conv 11x11/4, relu, maxpool, conv 5x5, relu, maxpool, conv 3x3, relu, conv 3x3,
//       relu, conv 3x3, relu, maxpool — numbered features.0 .. features.12 as in torchvision, so
//       the conv layers are features.0, .3, .6, .8, .10. With batchnorm on, a BatchNorm follows
//       each conv (as torchvision's vgg*_bn) and the numbering shifts: see ConvLayerNames().
//     avgpool (adaptive, 3x3), classifier: [dropout], linear 36W→16W, relu, [dropout],
//       linear 16W→16W, relu, linear 16W→classes.
//
// Without batchnorm, convolutions carry a bias; with it, they do not (as torchvision). The training
// flag is the module's `training` attribute (Module::train / eval), used by batch_norm and dropout
// without control flow in the graph. Weights are initialised as torchvision does (Kaiming normal,
// fan_out, for convs; BatchNorm 1/0; PyTorch's default uniform for linear layers) from LibTorch's
// global generator: call torch::manual_seed first for a reproducible network.
//
// Thread-compatible (uses LibTorch's global RNG).
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

#include "common/base/status.h"
#include "tools/train/train_options.h"

namespace nd {

// Checks the spec's values; errors name the flag ("--width: must be in 1..512, got 0").
[[nodiscard]] Status ValidateModelSpec(const ModelSpec& spec);

// Builds the network in training mode with freshly initialised weights (requires_grad is off:
// the trainer turns it on). LibTorch errors come back as a Status.
[[nodiscard]] StatusOr<torch::jit::Module> BuildModel(const ModelSpec& spec);

// Module paths of the network's convolutional stages, input to output, that are useful layers for
// dissection: "layer1".."layer4" for resnet; the conv modules ("features.0", ..., "features.10"
// without batchnorm) for alexnet. The last entry is the last conv layer.
std::vector<std::string> ConvLayerNames(const ModelSpec& spec);

// Channels of each entry of ConvLayerNames (the units a dissection of it reports).
std::vector<int> ConvLayerUnits(const ModelSpec& spec);

// Module path of the final classifier layer, the one sized by num_classes: "fc" for resnet; for
// alexnet the last Linear of `classifier`: "classifier.6" with dropout (as torchvision),
// "classifier.4" without.
std::string ClassifierName(const ModelSpec& spec);

}  // namespace nd
