// Drawing primitives of the synthetic images: per-pixel hashing, HSV colours, surfaces (how a
// primitive's pixels are shaded) and the Canvas that draws a shape into the photo and the four
// label maps at once. Header-only on purpose: Shade() runs for every pixel of every fill and must
// inline into the Canvas loops of each file that draws (render.cc, objects.cc).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "tools/make_broden/render.h"

namespace nd::synth {

inline constexpr float kPi = 3.14159265358979f;

// ---------------------------------------------------------------------------------------------
// Per-pixel hashing: cheap, stateless noise so that shading does not consume the image's Rng.

inline uint32_t Hash3(uint32_t x, uint32_t y, uint32_t z) {
  uint32_t h = x * 0x8da6b343u ^ y * 0xd8163841u ^ z * 0xcb1ab31fu;
  h ^= h >> 16;
  h *= 0x7feb352du;
  h ^= h >> 15;
  h *= 0x846ca68bu;
  h ^= h >> 16;
  return h;
}
// Uniform in [0, 1).
inline float Hash01(int x, int y, uint32_t salt) {
  return static_cast<float>(Hash3(static_cast<uint32_t>(x), static_cast<uint32_t>(y), salt) >> 8) *
         (1.f / 16777216.f);
}
inline float Frac(float v) { return v - std::floor(v); }

// BGR colour (0..255) from hue in degrees, saturation and value in [0, 1].
inline cv::Vec3f Hsv(float h, float s, float v) {
  h = std::fmod(h, 360.f);
  if (h < 0) h += 360.f;
  const float c = v * s, x = c * (1 - std::fabs(std::fmod(h / 60.f, 2.f) - 1)), m = v - c;
  float r = 0, g = 0, b = 0;
  if (h < 60) {
    r = c, g = x;
  } else if (h < 120) {
    r = x, g = c;
  } else if (h < 180) {
    g = c, b = x;
  } else if (h < 240) {
    g = x, b = c;
  } else if (h < 300) {
    r = x, b = c;
  } else {
    r = c, b = x;
  }
  return cv::Vec3f((b + m) * 255.f, (g + m) * 255.f, (r + m) * 255.f);
}

// ---------------------------------------------------------------------------------------------
// Surfaces: how the pixels of a primitive are shaded in the photo.

enum class Style : uint8_t {
  kFlat,
  kGradient,  // vertical blend c1 (at y = a) to c2 (at y = b)
  kWood,      // grain along angle a (radians)
  kBrick,
  kTile,
  kGrass,
  kWater,
  kMetal,
  kFabric,
  kStone,
  kAsphalt,
  kSand,
  kFoliage,
  kGlass,
  kCarpet,
  kFur,
  kCloud,
};

struct Surface {
  Style style = Style::kFlat;
  cv::Vec3f c1, c2;  // BGR; c2 is the second colour (mortar, gradient end, stripes)
  float a = 0, b = 0;
  float unit = 1;  // pattern scale in pixels per 224-image pixel
  uint32_t salt = 0;
};

inline cv::Vec3f Mix(const cv::Vec3f& p, const cv::Vec3f& q, float t) { return p + (q - p) * t; }

inline cv::Vec3f Shade(const Surface& s, int x, int y) {
  const float n = Hash01(x, y, s.salt) - 0.5f;  // per-pixel grain in [-0.5, 0.5)
  const float u = s.unit;
  const float fx = x / u, fy = y / u;  // pattern coordinates at the 224 scale
  switch (s.style) {
    case Style::kFlat:
      return s.c1 * (1.f + 0.08f * n);
    case Style::kGradient: {
      const float t = std::clamp((y - s.a) / std::max(1.f, s.b - s.a), 0.f, 1.f);
      return Mix(s.c1, s.c2, t) * (1.f + 0.03f * n);
    }
    case Style::kWood: {
      const float ca = std::cos(s.a), sa = std::sin(s.a);
      const float along = fx * ca + fy * sa, across = -fx * sa + fy * ca;
      const float ring = std::sin(across * 1.3f + 2.2f * std::sin(along * 0.09f + (s.salt & 15)));
      return s.c1 * (0.80f + 0.16f * ring + 0.10f * n);
    }
    case Style::kBrick: {
      const float bh = 5.f, bw = 12.f;
      const int row = static_cast<int>(std::floor(fy / bh));
      const float xo = fx + ((row & 1) ? bw * 0.5f : 0.f);
      const int col = static_cast<int>(std::floor(xo / bw));
      if (Frac(fy / bh) * bh < 1.1f || Frac(xo / bw) * bw < 1.1f) return s.c2 * (1.f + 0.1f * n);
      return s.c1 * (0.82f + 0.3f * Hash01(col, row, s.salt + 1) + 0.12f * n);
    }
    case Style::kTile: {
      const float t = 10.f;
      const int cx = static_cast<int>(std::floor(fx / t)),
                cy = static_cast<int>(std::floor(fy / t));
      if (Frac(fx / t) * t < 1.1f || Frac(fy / t) * t < 1.1f) return s.c2 * (1.f + 0.1f * n);
      return s.c1 * (0.88f + 0.2f * Hash01(cx, cy, s.salt + 2) + 0.05f * n);
    }
    case Style::kGrass: {
      const int col = static_cast<int>(fx);
      const float blade =
          Hash01(col, static_cast<int>((fy + (Hash3(col, 7, s.salt) & 7)) / 4.f), s.salt + 3);
      return s.c1 * (0.62f + 0.55f * blade + 0.15f * n);
    }
    case Style::kWater: {
      const float r = std::sin(fy * 0.9f + 2.f * std::sin(fx * 0.07f + (s.salt & 7)));
      cv::Vec3f c = s.c1 * (0.86f + 0.14f * r + 0.05f * n);
      if (r > 0.93f && Hash01(x / 3, y, s.salt) > 0.55f) c = Mix(c, cv::Vec3f(250, 250, 250), 0.5f);
      return c;
    }
    case Style::kMetal: {
      const float band = Hash01(0, static_cast<int>(fy), s.salt);
      const float spec = std::exp(-std::pow((fx - s.a) / 6.f, 2.f));
      return Mix(s.c1 * (0.86f + 0.12f * band + 0.04f * n), cv::Vec3f(245, 245, 245), 0.45f * spec);
    }
    case Style::kFabric: {
      const float weave = (((x >> 1) + (y >> 1)) & 1) ? 0.92f : 1.05f;
      cv::Vec3f c = s.c1;
      if (s.b > 0 && Frac((fx + fy) / s.b) < 0.35f) c = s.c2;  // striped fabric
      return c * (weave + 0.08f * n);
    }
    case Style::kStone: {
      const float cs = 7.f;
      const float jx = fx + 3.f * std::sin(fy * 0.3f), jy = fy + 3.f * std::sin(fx * 0.3f);
      const int cx = static_cast<int>(std::floor(jx / cs)),
                cy = static_cast<int>(std::floor(jy / cs));
      const bool crack = Frac(jx / cs) * cs < 0.9f || Frac(jy / cs) * cs < 0.9f;
      return s.c1 * ((crack ? 0.6f : 0.78f + 0.35f * Hash01(cx, cy, s.salt + 4)) + 0.14f * n);
    }
    case Style::kAsphalt: {
      const float speck = Hash01(x, y, s.salt + 5);
      return s.c1 * (speck > 0.97f ? 1.35f : 0.9f + 0.25f * n);
    }
    case Style::kSand: {
      const float ripple = std::sin(fy * 0.5f + 2.f * std::sin(fx * 0.1f));
      return s.c1 * (0.93f + 0.05f * ripple + 0.14f * n);
    }
    case Style::kFoliage: {
      const float big = Hash01(static_cast<int>(fx / 4), static_cast<int>(fy / 4), s.salt + 6);
      const float small = Hash01(static_cast<int>(fx / 2), static_cast<int>(fy / 2), s.salt + 7);
      return s.c1 * (0.55f + 0.35f * big + 0.25f * small + 0.1f * n);
    }
    case Style::kGlass: {
      const float t = Frac((fx + fy) / 14.f);
      const float refl = (t < 0.18f) ? 0.35f : 0.f;
      return Mix(s.c1 * (0.92f + 0.05f * n), cv::Vec3f(250, 250, 245), refl);
    }
    case Style::kCarpet: {
      const float k = Hash01(static_cast<int>(fx / 2), static_cast<int>(fy / 2), s.salt + 8);
      return s.c1 * (0.82f + 0.22f * k + 0.12f * n);
    }
    case Style::kFur: {
      const float streak =
          Hash01(static_cast<int>(fx + fy * 0.3f), static_cast<int>(fy / 5.f), s.salt + 9);
      return s.c1 * (0.72f + 0.4f * streak + 0.08f * n);
    }
    case Style::kCloud: {
      const float k = Hash01(static_cast<int>(fx / 3), static_cast<int>(fy / 3), s.salt + 10);
      return s.c1 * (0.93f + 0.07f * k + 0.02f * n);
    }
  }
  return s.c1;
}

// ---------------------------------------------------------------------------------------------
// Canvas: draws primitives into the photo and the four label maps at once.

struct Labels {
  uint16_t object = 0, part1 = 0, part2 = 0, material = 0;
};

class Canvas {
 public:
  Canvas(RenderedImage* out, int size) : out_(out), size_(size), unit_(size / 224.f) {
    mask_ = cv::Mat::zeros(size, size, CV_8UC1);
  }
  int size() const { return size_; }
  float unit() const { return unit_; }

  void Poly(const std::vector<cv::Point2f>& pts, const Surface& s, Labels l) {
    std::vector<cv::Point> ip(pts.size());
    for (size_t i = 0; i < pts.size(); ++i) ip[i] = P(pts[i].x, pts[i].y);
    const cv::Point* ptr = ip.data();
    const int n = static_cast<int>(ip.size());
    cv::fillPoly(mask_, &ptr, &n, 1, cv::Scalar(255), cv::LINE_8);
    Apply(cv::boundingRect(ip), s, l);
  }
  void Rect(float x0, float y0, float x1, float y1, const Surface& s, Labels l) {
    Poly({{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}}, s, l);
  }
  void Ellipse(float cx, float cy, float rx, float ry, float angle_deg, const Surface& s, Labels l,
               float start_deg = 0, float end_deg = 360) {
    const cv::Point c = P(cx, cy);
    const cv::Size axes(std::max(1, static_cast<int>(std::lround(rx))),
                        std::max(1, static_cast<int>(std::lround(ry))));
    cv::ellipse(mask_, c, axes, angle_deg, start_deg, end_deg, cv::Scalar(255), cv::FILLED,
                cv::LINE_8);
    const int r = std::max(axes.width, axes.height) + 2;
    Apply(cv::Rect(c.x - r, c.y - r, 2 * r + 1, 2 * r + 1), s, l);
  }
  void Circle(float cx, float cy, float r, const Surface& s, Labels l) {
    Ellipse(cx, cy, r, r, 0, s, l);
  }
  void Line(float x0, float y0, float x1, float y1, float thickness, const Surface& s, Labels l) {
    const cv::Point a = P(x0, y0), b = P(x1, y1);
    const int t = std::max(1, static_cast<int>(std::lround(thickness)));
    cv::line(mask_, a, b, cv::Scalar(255), t, cv::LINE_8);
    const int r = t / 2 + 2;
    Apply(cv::Rect(cv::Point(std::min(a.x, b.x) - r, std::min(a.y, b.y) - r),
                   cv::Point(std::max(a.x, b.x) + r + 1, std::max(a.y, b.y) + r + 1)),
          s, l);
  }

 private:
  static cv::Point P(float x, float y) {
    return cv::Point(static_cast<int>(std::lround(std::clamp(x, -1e5f, 1e5f))),
                     static_cast<int>(std::lround(std::clamp(y, -1e5f, 1e5f))));
  }
  // Shades and labels every masked pixel inside `box`, clearing the mask as it goes. `box` must
  // contain every pixel the primitive set.
  void Apply(cv::Rect box, Surface s, Labels l) {
    box &= cv::Rect(0, 0, size_, size_);
    // One label number never sits in two layers at one pixel (real Broden's layers come from
    // different sources and almost never repeat a label; a repeat would count the pixel twice in
    // the label's truth and intersections). Stuff drawn as object grass/sand/water keeps the label
    // in the object layer, the coarser annotation, which is also its primary category.
    if (l.part1 != 0 && l.part1 == l.object) l.part1 = 0;
    if (l.part2 != 0 && (l.part2 == l.object || l.part2 == l.part1)) l.part2 = 0;
    if (l.material != 0 &&
        (l.material == l.object || l.material == l.part1 || l.material == l.part2)) {
      l.material = 0;
    }
    s.unit = unit_;
    for (int y = box.y; y < box.y + box.height; ++y) {
      uint8_t* m = mask_.ptr<uint8_t>(y);
      cv::Vec3b* img = out_->image.ptr<cv::Vec3b>(y);
      uint16_t* obj = out_->object.ptr<uint16_t>(y);
      uint16_t* p1 = out_->part1.ptr<uint16_t>(y);
      uint16_t* p2 = out_->part2.ptr<uint16_t>(y);
      uint16_t* mat = out_->material.ptr<uint16_t>(y);
      for (int x = box.x; x < box.x + box.width; ++x) {
        if (!m[x]) continue;
        m[x] = 0;
        const cv::Vec3f c = Shade(s, x, y);
        img[x] = cv::Vec3b(cv::saturate_cast<uint8_t>(c[0]), cv::saturate_cast<uint8_t>(c[1]),
                           cv::saturate_cast<uint8_t>(c[2]));
        obj[x] = l.object;
        p1[x] = l.part1;
        p2[x] = l.part2;
        mat[x] = l.material;
      }
    }
  }

  RenderedImage* out_;
  int size_;
  float unit_;
  cv::Mat mask_;
};

// ---------------------------------------------------------------------------------------------
// Palettes and surfaces of the materials.

inline Surface MakeSurface(Style style, cv::Vec3f c1, Rng& rng) {
  Surface s;
  s.style = style;
  s.c1 = c1;
  s.c2 = c1 * 0.6f;
  s.salt = static_cast<uint32_t>(rng.Next());
  return s;
}

inline cv::Vec3f WoodColor(Rng& rng) {
  return Hsv(rng.Range(18, 38), rng.Range(0.45, 0.8), rng.Range(0.3, 0.7));
}

inline Surface WoodSurface(Rng& rng, float angle_rad) {
  Surface s = MakeSurface(Style::kWood, WoodColor(rng), rng);
  s.a = angle_rad;
  return s;
}

inline Surface BrickSurface(Rng& rng) {
  Surface s = MakeSurface(Style::kBrick,
                          Hsv(rng.Range(0, 22), rng.Range(0.5, 0.8), rng.Range(0.45, 0.75)), rng);
  s.c2 = Hsv(30, 0.08f, rng.Range(0.65, 0.85));
  return s;
}

inline Surface StoneSurface(Rng& rng) {
  return MakeSurface(Style::kStone,
                     Hsv(rng.Range(20, 220), rng.Range(0.03, 0.18), rng.Range(0.45, 0.75)), rng);
}

inline Surface MetalSurface(Rng& rng, cv::Vec3f color, float highlight_x) {
  Surface s = MakeSurface(Style::kMetal, color, rng);
  s.a = highlight_x;
  return s;
}

inline Surface GlassSurface(Rng& rng) {
  return MakeSurface(Style::kGlass,
                     Hsv(rng.Range(185, 215), rng.Range(0.15, 0.45), rng.Range(0.55, 0.85)), rng);
}

inline Surface PaintedSurface(Rng& rng, cv::Vec3f color) {
  return MakeSurface(Style::kFlat, color, rng);
}

inline cv::Vec3f VividColor(Rng& rng) {
  // Saturated colours and some neutrals, as cars, clothes and boats come in.
  const int k = rng.Int(0, 9);
  if (k == 0) return Hsv(0, 0, rng.Range(0.05, 0.2));   // black
  if (k == 1) return Hsv(0, 0, rng.Range(0.85, 0.97));  // white
  if (k == 2) return Hsv(0, 0, rng.Range(0.4, 0.65));   // grey
  return Hsv(rng.Range(0, 360), rng.Range(0.55, 0.95), rng.Range(0.45, 0.95));
}

inline cv::Vec3f SkinColor(Rng& rng) {
  return Hsv(rng.Range(14, 30), rng.Range(0.25, 0.6), rng.Range(0.35, 0.95));
}

inline cv::Vec3f HairColor(Rng& rng) {
  const int k = rng.Int(0, 4);
  if (k == 0) return Hsv(0, 0, 0.08f);                     // black
  if (k == 1) return Hsv(25, 0.6f, rng.Range(0.2, 0.4));   // brown
  if (k == 2) return Hsv(45, 0.55f, rng.Range(0.7, 0.9));  // blond
  if (k == 3) return Hsv(0, 0.0f, rng.Range(0.55, 0.8));   // grey
  return Hsv(15, 0.75f, 0.6f);                             // red
}

// ---------------------------------------------------------------------------------------------
// Objects. (bx, by) is the bottom centre where the object meets the ground; sizes in pixels.

}  // namespace nd::synth
