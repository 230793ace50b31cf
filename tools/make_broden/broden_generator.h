// BrodenGenerator: writes a synthetic dataset in exactly the Broden on-disk layout (SPEC.md §1,
// common/broden/FORMAT.md), deterministic for a seed. It is the demo dataset and the data of the
// tests: scenes of objects with parts (and parts of parts), materials, colours, scenes and
// textures that co-occur and overlap as in real photos. The vocabulary and the rules that decide
// colour and scene labels are in synth_labels.h; the drawing is in render.h.
//
// Layout written under options.out_dir:
//   index.csv     image,split,ih,iw,sh,sw,color,object,material,part,scene,texture
//                 e.g. synth/000001.jpg,train,224,224,112,112,synth/000001_color.png,
//                      synth/000001_object.png,synth/000001_material.png,
//                      synth/000001_part_1.png;synth/000001_part_2.png,78,
//   category.csv  name,first,last,count,frequency (rows: color, object, material, part, scene,
//                 texture; this is also sorted by `first`, as the original sorts it)
//   label.csv     number,name,category,frequency,coverage,syns
//   c_<cat>.csv   code,number,name,frequency,coverage
//   images/synth/NNNNNN.jpg (1-based, at least 6 digits), and per image
//                 NNNNNN_color.png, NNNNNN_object.png, NNNNNN_material.png,
//                 NNNNNN_part_1.png, NNNNNN_part_2.png
//
// What each image has:
//   - every image: the JPEG photo (size×size, quality 90) and a colour layer;
//   - scene images (about 85%): object and material layers, a part_1 layer when any part is
//     visible and a part_2 layer when any part of a part is (window panes, hubcaps, hair, bulbs,
//     door knobs); a scene number when a scene rule holds (synth_labels.h), else none;
//   - texture images (options.texture_fraction): a texture number, and only the colour layer.
//   Label PNGs are 8-bit RGB, label = R + 256*G, size sh×sw with sh = sw = size/2 (integer
//   division, as the original: 224→112, 227→113, 384→192). Layers are drawn at full resolution and
//   downsampled by nearest neighbour: segmentation pixel (i, j) takes full-resolution pixel
//   (min(S-1, floor((i+0.5)*S/sh)), min(S-1, floor((j+0.5)*S/sw))). The colour layer names the
//   colour of exactly those photo pixels (before JPEG compression), which is the same as naming
//   every pixel and then downsampling.
//   split: "val" for about options.val_fraction of the images (a per-image random draw), else
//   "train".
//
// Statistics (computed from the label maps as written, summed in image order with 64-bit
// integers, so identical for any thread count):
//   - per category c and label l: frequency(c,l) = number of images whose category-c layers (or
//     scalar labels) contain l; pixels(c,l) = pixels carrying l summed over all category-c layers
//     of all images, a scalar label counting sh*sw;
//   - coverage(c,l) = pixels(c,l) / (sh*sw) (whole images; every image has the same sh×sw, so this
//     equals the sum over images of the per-image fraction), printed with %f (6 decimals);
//   - c_<cat>.csv: frequency(c,l) and coverage(c,l); one row per label of the table that is drawn
//     in the category (synth_labels.h), even with frequency 0, so label numbers and rows do not
//     depend on the seed; codes 1..count in label number order;
//   - label.csv: frequency = sum over categories of frequency(c,l), coverage = sum of
//     coverage(c,l) (as the original unify() does); category = "cat(n);..." over the label's
//     categories, most frequent first (ties: category.csv order);
//   - category.csv: first/last = smallest/largest label number in the category, count = number of
//     labels, frequency = sum over the category's labels of frequency(c,l) (as the original).
//
// Crash safety: everything is written into a sibling directory "<out_dir>.partial-<pid>" that is
// renamed to out_dir at the very end; a dataset at out_dir is therefore always complete.
//
// Determinism: image i is rendered from ImageSeed(seed, i) only; the output bytes depend on
// (seed, num_images, size, texture_fraction, val_fraction, jpeg_quality) and the libraries'
// encoders, not on the thread count.
//
// Thread-compatible: one Run() at a time per instance; Run() uses its own worker threads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "tools/make_broden/synth_labels.h"

namespace nd {

struct BrodenGeneratorOptions {
  std::string out_dir;             // required; must not exist, or be an empty directory
  int64_t num_images = 0;          // required, 1..10,000,000
  uint64_t seed = 1;               // dataset seed
  int image_size = 224;            // photo height = width, 32..2048; segmentation is size/2
  int threads = 0;                 // worker threads; 0 = std::thread::hardware_concurrency()
  double texture_fraction = 0.15;  // share of texture-only images, [0, 1]
  double val_fraction = 0.2;       // share of images in the "val" split, [0, 1]
  int jpeg_quality = 90;           // 1..100
  // Replace an existing out_dir that holds a dataset (has index.csv) or is empty. Never removes a
  // non-empty directory without index.csv.
  bool overwrite = false;
  bool log_progress = false;  // log a line every ~10% through nd::LogInfo
};

struct BrodenGeneratorSummary {
  int64_t num_images = 0;
  int64_t num_texture_images = 0;
  int64_t num_train = 0, num_val = 0;
  int image_size = 0, seg_size = 0;
  int threads = 0;
  // Per category (synth::Category order): labels in c_<cat>.csv, and those with frequency > 0.
  std::vector<int> labels_in_category;
  std::vector<int> labels_present;
  // Images per scene label (indexed by label number; 0 = images without a scene).
  std::vector<int64_t> scene_images;
  double seconds = 0;
  double images_per_second = 0;
};

class BrodenGenerator {
 public:
  explicit BrodenGenerator(BrodenGeneratorOptions options);

  // Checks the options: values in range, out_dir usable. Run() calls it first.
  Status Validate() const;
  // Generates the dataset. On error, removes the partial directory and leaves out_dir untouched.
  StatusOr<BrodenGeneratorSummary> Run();

  // Segmentation size for a photo size: size / 2.
  static int SegSize(int image_size) { return image_size / 2; }

 private:
  BrodenGeneratorOptions options_;
};

// One line per category and the speed, for the CLI.
std::string FormatSummary(const BrodenGeneratorSummary& summary);

}  // namespace nd
