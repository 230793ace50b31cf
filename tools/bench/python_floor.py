#!/usr/bin/env python3
"""The bare decode + forward floor in Python, to compare nd-bench's floor with (issue 17).

Usage: /usr/bin/python3 tools/bench/python_floor.py DATASET MODEL.pt [--batch 32] [--size 224]
       [--format contiguous|channels_last] [--threads N]

Reads DATASET/index.csv, decodes every image with PIL (RGB), resizes to --size when it differs
(bilinear), normalises with torchvision's mean and std, and runs the TorchScript model on batches
under torch.inference_mode with N intra-op threads (default: all cores), in one memory format.
Prints the model load time, the loop time and the whole program's time from interpreter start
(what `time python3 ...` would show, less the interpreter's own start). Debian 12: python3-torch,
python3-pil.
"""
import argparse
import csv
import os
import time

T0 = time.time()

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("dataset")
    p.add_argument("model")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--format", choices=["contiguous", "channels_last"], default="channels_last")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    with open(os.path.join(a.dataset, "index.csv")) as f:
        paths = [os.path.join(a.dataset, "images", row["image"]) for row in csv.DictReader(f)]
    l0 = time.time()
    model = torch.jit.load(a.model).eval()
    fmt = torch.channels_last if a.format == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    load_s = time.time() - l0
    mean = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
    scale = 1 / (np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255)
    t0 = time.time()
    forward_s = 0.0
    with torch.inference_mode():
        for begin in range(0, len(paths), a.batch):
            batch = []
            for path in paths[begin:begin + a.batch]:
                im = Image.open(path).convert("RGB")
                if im.size != (a.size, a.size):
                    im = im.resize((a.size, a.size), Image.BILINEAR)
                batch.append((np.asarray(im, dtype=np.float32) - mean) * scale)
            x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)
            x = x.contiguous(memory_format=fmt)
            f0 = time.time()
            model(x)
            forward_s += time.time() - f0
    loop_s = time.time() - t0
    print(f"python floor, {a.format}: {len(paths)} images, program {time.time() - T0:.2f} s "
          f"(model load {load_s:.2f} s, decode + forward loop {loop_s:.2f} s, "
          f"forward alone {forward_s:.2f} s), {a.threads} threads")


if __name__ == "__main__":
    main()
