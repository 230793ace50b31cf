// Procedural rendering of one synthetic Broden image and its full-resolution label maps.
//
// Each image is a pure function of its Rng: a scene layout (street, parking lot, beach, harbor,
// forest, yard, park, bedroom, dining room) drawn back to front with OpenCV primitives, or a
// texture-only image (a whole-image pattern, like DTD in real Broden). Every primitive is drawn
// once into a scratch mask; the masked pixels then get the surface's procedural shading in the
// photo and the primitive's labels in the object, part (two layers: parts and parts of parts) and
// material maps, so photo and labels agree pixel for pixel. Lighting, noise and a slight blur are
// applied to the photo afterwards (labels are not blurred, as with real annotations).
//
// Thread-compatible: one RenderedImage and one Rng per thread.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>

#include "tools/make_broden/synth_labels.h"

namespace nd::synth {

// SplitMix64: a small, fast generator whose sequence is identical on every platform and standard
// library (std:: distributions are not), which keeps datasets bit-for-bit reproducible.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1), 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform in [lo, hi).
  float Range(double lo, double hi) { return static_cast<float>(lo + (hi - lo) * Uniform()); }
  // Uniform integer in [lo, hi] (inclusive). REQUIRES: lo <= hi.
  int Int(int lo, int hi) {
    return lo + static_cast<int>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }
  bool Chance(double p) { return Uniform() < p; }

 private:
  uint64_t state_;
};

// The seed of image `index` (0-based) of a dataset generated with `seed`: a hash of both, so that
// images are independent of each other and of the order in which threads render them.
uint64_t ImageSeed(uint64_t seed, int64_t index);

enum class Layout {
  kStreet,
  kParkingLot,
  kBeach,
  kHarbor,
  kForest,
  kYard,
  kPark,
  kBedroom,
  kDiningRoom,
  kTexture,  // a texture-only image: no object, part, material or scene labels
};

struct RenderedImage {
  cv::Mat image;  // CV_8UC3 BGR, size×size
  // CV_16UC1, size×size, global label numbers (0 = unlabeled).
  cv::Mat object, material, part1, part2;
  Layout layout = Layout::kStreet;
  Label texture = kUnlabeled;  // set for Layout::kTexture only
};

struct RenderOptions {
  int size = 224;                  // photo height and width in pixels
  double texture_fraction = 0.15;  // probability that an image is a texture-only image
};

// Renders one image into *out, reusing its buffers. Consumes random numbers from *rng only.
void RenderImage(const RenderOptions& options, Rng* rng, RenderedImage* out);

}  // namespace nd::synth
