#!/usr/bin/env python3
"""Writes TorchScript ResNet-18, ResNet-50 and AlexNet (random weights) for timing nd-pipeline.

Usage: python3 export_models.py OUT_DIR [--archs resnet18,resnet50,alexnet] [--size 224]

The architectures are written here in plain torch.nn (the GPU machine may have no torchvision),
with torchvision's module names (conv1, bn1, layer1..layer4, avgpool, fc), so `model.layers =
["layer4"]` names the same module as for a torchvision model. Weights are random (seed 0); the
batch-norm running statistics are set from one forward pass on random input in training mode, so
activations keep a sane range through the blocks (fp16 autocast does not overflow). Writes
OUT_DIR/<arch>.pt (torch.jit.trace, eval mode) and prints one line per file.
"""
import argparse
import os
import time

import torch
from torch import nn


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


def conv1x1(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, width, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(cin, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(width, width)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(cin, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, width * 4)
        self.bn3 = nn.BatchNorm2d(width * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    def __init__(self, block, depths, num_classes=1000):
        super().__init__()
        self.cin = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._layer(block, 64, depths[0], 1)
        self.layer2 = self._layer(block, 128, depths[1], 2)
        self.layer3 = self._layer(block, 256, depths[2], 2)
        self.layer4 = self._layer(block, 512, depths[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _layer(self, block, width, depth, stride):
        downsample = None
        if stride != 1 or self.cin != width * block.expansion:
            downsample = nn.Sequential(conv1x1(self.cin, width * block.expansion, stride),
                                       nn.BatchNorm2d(width * block.expansion))
        blocks = [block(self.cin, width, stride, downsample)]
        self.cin = width * block.expansion
        blocks += [block(self.cin, width) for _ in range(1, depth)]
        return nn.Sequential(*blocks)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class AlexNet(nn.Module):
    """torchvision's AlexNet with its module names: features.0 .. features.12 (features.10 is the
    last convolution), avgpool, classifier.1/.4/.6."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2))
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True),
            nn.Dropout(), nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


ARCHS = {
    "resnet18": lambda: ResNet(BasicBlock, [2, 2, 2, 2]),
    "resnet50": lambda: ResNet(Bottleneck, [3, 4, 6, 3]),
    "alexnet": AlexNet,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--archs", default="resnet18,resnet50")
    p.add_argument("--size", type=int, default=224)
    a = p.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    torch.set_num_threads(min(16, os.cpu_count() or 1))
    for arch in a.archs.split(","):
        t0 = time.time()
        torch.manual_seed(0)
        model = ARCHS[arch]()
        # Batch-norm statistics from one batch of random images (momentum 1: that batch only).
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 1.0
        model.train()
        with torch.no_grad():
            model(torch.randn(8, 3, a.size, a.size))
        model.eval()
        example = torch.randn(1, 3, a.size, a.size)
        with torch.no_grad():
            traced = torch.jit.trace(model, example, check_trace=False)
        path = os.path.join(a.out_dir, arch + ".pt")
        traced.save(path + ".tmp")
        os.replace(path + ".tmp", path)  # a killed export leaves no partial model behind
        print(f"{path}: {arch}, {sum(t.numel() for t in model.parameters()) / 1e6:.1f} M parameters, "
              f"{time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
