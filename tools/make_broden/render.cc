#include "tools/make_broden/render.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace nd::synth {
namespace {

constexpr float kPi = 3.14159265358979f;

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
cv::Vec3f Hsv(float h, float s, float v) {
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

cv::Vec3f Shade(const Surface& s, int x, int y) {
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

Surface MakeSurface(Style style, cv::Vec3f c1, Rng& rng) {
  Surface s;
  s.style = style;
  s.c1 = c1;
  s.c2 = c1 * 0.6f;
  s.salt = static_cast<uint32_t>(rng.Next());
  return s;
}

cv::Vec3f WoodColor(Rng& rng) {
  return Hsv(rng.Range(18, 38), rng.Range(0.45, 0.8), rng.Range(0.3, 0.7));
}

Surface WoodSurface(Rng& rng, float angle_rad) {
  Surface s = MakeSurface(Style::kWood, WoodColor(rng), rng);
  s.a = angle_rad;
  return s;
}

Surface BrickSurface(Rng& rng) {
  Surface s = MakeSurface(Style::kBrick,
                          Hsv(rng.Range(0, 22), rng.Range(0.5, 0.8), rng.Range(0.45, 0.75)), rng);
  s.c2 = Hsv(30, 0.08f, rng.Range(0.65, 0.85));
  return s;
}

Surface StoneSurface(Rng& rng) {
  return MakeSurface(Style::kStone,
                     Hsv(rng.Range(20, 220), rng.Range(0.03, 0.18), rng.Range(0.45, 0.75)), rng);
}

Surface MetalSurface(Rng& rng, cv::Vec3f color, float highlight_x) {
  Surface s = MakeSurface(Style::kMetal, color, rng);
  s.a = highlight_x;
  return s;
}

Surface GlassSurface(Rng& rng) {
  return MakeSurface(Style::kGlass,
                     Hsv(rng.Range(185, 215), rng.Range(0.15, 0.45), rng.Range(0.55, 0.85)), rng);
}

Surface PaintedSurface(Rng& rng, cv::Vec3f color) { return MakeSurface(Style::kFlat, color, rng); }

cv::Vec3f VividColor(Rng& rng) {
  // Saturated colours and some neutrals, as cars, clothes and boats come in.
  const int k = rng.Int(0, 9);
  if (k == 0) return Hsv(0, 0, rng.Range(0.05, 0.2));   // black
  if (k == 1) return Hsv(0, 0, rng.Range(0.85, 0.97));  // white
  if (k == 2) return Hsv(0, 0, rng.Range(0.4, 0.65));   // grey
  return Hsv(rng.Range(0, 360), rng.Range(0.55, 0.95), rng.Range(0.45, 0.95));
}

cv::Vec3f SkinColor(Rng& rng) {
  return Hsv(rng.Range(14, 30), rng.Range(0.25, 0.6), rng.Range(0.35, 0.95));
}

cv::Vec3f HairColor(Rng& rng) {
  const int k = rng.Int(0, 4);
  if (k == 0) return Hsv(0, 0, 0.08f);                     // black
  if (k == 1) return Hsv(25, 0.6f, rng.Range(0.2, 0.4));   // brown
  if (k == 2) return Hsv(45, 0.55f, rng.Range(0.7, 0.9));  // blond
  if (k == 3) return Hsv(0, 0.0f, rng.Range(0.55, 0.8));   // grey
  return Hsv(15, 0.75f, 0.6f);                             // red
}

// ---------------------------------------------------------------------------------------------
// Objects. (bx, by) is the bottom centre where the object meets the ground; sizes in pixels.

void DrawHouse(Canvas& c, Rng& rng, float bx, float by, float h) {
  const float w = h * rng.Range(1.0, 1.6);
  const float body_h = h * rng.Range(0.55, 0.7);
  const float x0 = bx - w / 2, x1 = bx + w / 2, yb = by - body_h;
  Surface wall;
  uint16_t wall_mat;
  switch (rng.Int(0, 3)) {
    case 0:
      wall = BrickSurface(rng);
      wall_mat = kBrick;
      break;
    case 1:
      wall = WoodSurface(rng, 0.f);
      wall_mat = kWood;
      break;
    case 2:
      wall = PaintedSurface(rng, Hsv(rng.Range(0, 360), rng.Range(0.1, 0.5), rng.Range(0.7, 0.95)));
      wall_mat = kPainted;
      break;
    default:
      wall = StoneSurface(rng);
      wall_mat = kStone;
      break;
  }
  const float roof_h = h - body_h;
  if (rng.Chance(0.5)) {
    const float cx = x0 + w * rng.Range(0.2, 0.75), cw = w * 0.08f;
    c.Rect(cx, yb - roof_h * 0.95f, cx + cw, yb, BrickSurface(rng), {kHouse, kChimney, 0, kBrick});
  }
  Surface roof = MakeSurface(
      Style::kTile,
      rng.Chance(0.6) ? Hsv(rng.Range(0, 25), rng.Range(0.5, 0.8), rng.Range(0.35, 0.65))
                      : Hsv(rng.Range(200, 230), rng.Range(0.05, 0.3), rng.Range(0.2, 0.45)),
      rng);
  roof.c2 = roof.c1 * 0.55f;
  const float o = 0.05f * w;
  if (rng.Chance(0.7)) {
    c.Poly({{x0 - o, yb}, {bx, by - h}, {x1 + o, yb}}, roof, {kHouse, kRoof, 0, kTile});
  } else {
    c.Poly({{x0 - o, yb}, {x0 + 0.15f * w, by - h}, {x1 - 0.15f * w, by - h}, {x1 + o, yb}}, roof,
           {kHouse, kRoof, 0, kTile});
  }
  c.Rect(x0, yb, x1, by, wall, {kHouse, 0, 0, wall_mat});
  // Door.
  const float dw = w * rng.Range(0.14, 0.2), dh = body_h * rng.Range(0.5, 0.65);
  const float dx = x0 + w * rng.Range(0.1, 0.9) - dw / 2;
  Surface door = WoodSurface(rng, kPi / 2);
  if (rng.Chance(0.3)) door.c1 = Hsv(rng.Range(0, 360), rng.Range(0.5, 0.8), rng.Range(0.3, 0.6));
  c.Rect(dx, by - dh, dx + dw, by, door, {kHouse, kDoor, 0, kWood});
  const float kr = std::max(1.6f * c.unit(), 0.09f * dw);
  c.Circle(dx + dw * 0.78f, by - dh * 0.48f, kr,
           MetalSurface(rng, Hsv(45, 0.5f, 0.8f), dx + dw * 0.78f), {kHouse, kDoor, kKnob, kMetal});
  // Windows: a row (two rows on tall houses), skipping the door.
  const float ww = w * rng.Range(0.13, 0.19), wh = ww * rng.Range(0.9, 1.3);
  const int rows = body_h > 2.4f * wh ? 2 : 1;
  const cv::Vec3f frame_color =
      rng.Chance(0.7) ? Hsv(0, 0, rng.Range(0.85, 0.97)) : Hsv(rng.Range(0, 360), 0.5f, 0.35f);
  const int panes_x = rng.Int(1, 2), panes_y = rng.Int(1, 2);
  for (int r = 0; r < rows; ++r) {
    const float wy = yb + body_h * (r == 0 ? 0.15f : 0.55f);
    for (float wx = x0 + 0.08f * w; wx + ww < x1 - 0.05f * w; wx += ww * rng.Range(1.5, 2.2)) {
      if (wy + wh > by - dh - 2 && wx < dx + dw + 2 && wx + ww > dx - 2) continue;  // door
      c.Rect(wx, wy, wx + ww, wy + wh, PaintedSurface(rng, frame_color),
             {kHouse, kWindow, 0, kPainted});
      const float t = std::max(1.2f * c.unit(), 0.1f * ww);
      const Surface glass = GlassSurface(rng);
      const float pw = (ww - t * (panes_x + 1)) / panes_x, ph = (wh - t * (panes_y + 1)) / panes_y;
      for (int i = 0; i < panes_x; ++i) {
        for (int j = 0; j < panes_y; ++j) {
          const float px = wx + t + i * (pw + t), py = wy + t + j * (ph + t);
          c.Rect(px, py, px + pw - 1, py + ph - 1, glass, {kHouse, kWindow, kPane, kGlass});
        }
      }
    }
  }
}

void DrawTree(Canvas& c, Rng& rng, float bx, float by, float h) {
  const float tw = h * rng.Range(0.06, 0.11);
  Surface bark = WoodSurface(rng, kPi / 2);
  bark.c1 = Hsv(rng.Range(15, 35), rng.Range(0.3, 0.6), rng.Range(0.18, 0.45));
  const bool conifer = rng.Chance(0.3);
  const float trunk_top = by - h * (conifer ? 0.35f : 0.55f);
  c.Rect(bx - tw / 2, trunk_top, bx + tw / 2, by, bark, {kTree, kTrunk, 0, kWood});
  cv::Vec3f leaf = rng.Chance(0.15)
                       ? Hsv(rng.Range(8, 50), rng.Range(0.6, 0.9), rng.Range(0.5, 0.85))
                       : Hsv(rng.Range(75, 140), rng.Range(0.45, 0.85), rng.Range(0.25, 0.65));
  Surface foliage = MakeSurface(Style::kFoliage, leaf, rng);
  const Labels crown{kTree, kCrown, 0, kFoliage};
  if (conifer) {
    const int layers = rng.Int(2, 4);
    for (int i = 0; i < layers; ++i) {
      const float y0 = by - h * (0.2f + 0.8f * i / layers), y1 = by - h;
      const float half = h * 0.22f * (1.f - 0.5f * i / layers);
      c.Poly({{bx - half, y0}, {bx, std::min(y1, y0 - h * 0.4f)}, {bx + half, y0}}, foliage, crown);
    }
  } else {
    const int blobs = rng.Int(3, 5);
    const float cy = by - h * 0.7f;
    for (int i = 0; i < blobs; ++i) {
      const float r = h * rng.Range(0.15, 0.26);
      c.Ellipse(bx + h * rng.Range(-0.15, 0.15), cy + h * rng.Range(-0.12, 0.1),
                r * rng.Range(0.9, 1.3), r, rng.Range(0, 180), foliage, crown);
    }
  }
}

void DrawCar(Canvas& c, Rng& rng, float bx, float by, float len) {
  const bool flip = rng.Chance(0.5);
  auto X = [&](float x) { return flip ? 2 * bx - x : x; };  // mirror for cars facing left
  const float H = len * rng.Range(0.38, 0.48), r = len * 0.11f;
  const float x0 = bx - len / 2, x1 = bx + len / 2;
  const float body_top = by - 0.55f * H, body_bot = by - 0.45f * r;
  const cv::Vec3f paint = VividColor(rng);
  const Surface metal = MetalSurface(rng, paint, bx + len * rng.Range(-0.3, 0.3));
  const Labels body{kCar, 0, 0, kMetal};
  // Cabin, then body over its lower edge.
  c.Poly({{X(x0 + 0.18f * len), body_top + 1},
          {X(x0 + 0.3f * len), by - H},
          {X(x1 - 0.28f * len), by - H},
          {X(x1 - 0.1f * len), body_top + 1}},
         metal, body);
  c.Poly({{X(x0), body_bot},
          {X(x1), body_bot},
          {X(x1), body_top + 0.12f * H},
          {X(x1 - 0.05f * len), body_top},
          {X(x0 + 0.04f * len), body_top},
          {X(x0), body_top + 0.15f * H}},
         metal, body);
  // Windows in the cabin, split by a pillar.
  const Surface glass = GlassSurface(rng);
  const float wy0 = by - H + 0.12f * H, wy1 = body_top - 0.02f * H;
  const float mid = x0 + 0.52f * len;
  c.Poly({{X(x0 + 0.23f * len), wy1},
          {X(x0 + 0.32f * len), wy0},
          {X(mid - 0.02f * len), wy0},
          {X(mid - 0.02f * len), wy1}},
         glass, {kCar, kWindow, 0, kGlass});
  c.Poly({{X(mid + 0.02f * len), wy1},
          {X(mid + 0.02f * len), wy0},
          {X(x1 - 0.3f * len), wy0},
          {X(x1 - 0.15f * len), wy1}},
         glass, {kCar, kWindow, 0, kGlass});
  // Door under the front window, a little darker than the body.
  Surface door = metal;
  door.c1 = paint * 0.85f;
  c.Rect(std::min(X(x0 + 0.34f * len), X(x0 + 0.58f * len)), body_top + 0.04f * H,
         std::max(X(x0 + 0.34f * len), X(x0 + 0.58f * len)), body_bot - 0.12f * H, door,
         {kCar, kDoor, 0, kMetal});
  // Headlight at the front.
  c.Ellipse(X(x1 - 0.035f * len), body_top + 0.2f * H, 0.04f * len, 0.03f * len, 0,
            MakeSurface(Style::kFlat, Hsv(50, 0.3f, 0.97f), rng), {kCar, kHeadlight, 0, kGlass});
  // Wheels: tyre (no material label, like unannotated rubber) with a metal hubcap.
  const Surface tyre = MakeSurface(Style::kFlat, Hsv(0, 0, 0.1f), rng);
  const Surface hub = MetalSurface(rng, Hsv(0, 0, rng.Range(0.55, 0.8)), bx);
  for (float wx : {x0 + 0.22f * len, x1 - 0.2f * len}) {
    c.Circle(X(wx), by - r, r, tyre, {kCar, kWheel, 0, 0});
    c.Circle(X(wx), by - r, r * 0.5f, hub, {kCar, kWheel, kHubcap, kMetal});
  }
}

void DrawPerson(Canvas& c, Rng& rng, float bx, float by, float h) {
  const float hr = 0.085f * h;
  const float head_cy = by - h + hr;
  const float shoulder = head_cy + hr + 0.015f * h, hip = by - 0.47f * h;
  const Surface shirt = MakeSurface(Style::kFabric, VividColor(rng), rng);
  Surface trousers = MakeSurface(
      Style::kFabric,
      rng.Chance(0.5) ? Hsv(rng.Range(205, 230), rng.Range(0.4, 0.8), rng.Range(0.25, 0.6))
                      : VividColor(rng),
      rng);
  const float stride = h * rng.Range(-0.1, 0.1), lw = 0.09f * h;
  c.Poly({{bx - 0.1f * h, hip},
          {bx - 0.01f * h, hip},
          {bx - stride * 0.5f + lw / 2, by},
          {bx - stride * 0.5f - lw / 2, by}},
         trousers, {kPerson, kLeg, 0, kFabric});
  c.Poly({{bx + 0.01f * h, hip},
          {bx + 0.1f * h, hip},
          {bx + stride * 0.5f + lw / 2, by},
          {bx + stride * 0.5f - lw / 2, by}},
         trousers, {kPerson, kLeg, 0, kFabric});
  c.Poly({{bx - 0.13f * h, shoulder},
          {bx + 0.13f * h, shoulder},
          {bx + 0.11f * h, hip + 0.02f * h},
          {bx - 0.11f * h, hip + 0.02f * h}},
         shirt, {kPerson, kTorso, 0, kFabric});
  const float at = 0.065f * h;
  for (int side : {-1, 1}) {
    const float ax = bx + side * 0.15f * h;
    const float hx = ax + side * h * rng.Range(0.0, 0.14), hy = shoulder + h * rng.Range(0.2, 0.32);
    c.Line(ax, shoulder + at / 2, hx, hy, at, shirt, {kPerson, kArm, 0, kFabric});
  }
  c.Circle(bx, head_cy, hr, MakeSurface(Style::kFlat, SkinColor(rng), rng),
           {kPerson, kHead, 0, kSkin});
  c.Ellipse(bx, head_cy - 0.1f * hr, hr * 1.05f, hr * 0.95f, 0,
            MakeSurface(Style::kFur, HairColor(rng), rng), {kPerson, kHead, kHair, 0}, 180, 360);
}

void DrawDog(Canvas& c, Rng& rng, float bx, float by, float len) {
  const bool flip = rng.Chance(0.5);
  auto X = [&](float x) { return flip ? 2 * bx - x : x; };
  const float h = 0.6f * len;
  const int k = rng.Int(0, 4);
  const cv::Vec3f coat = k == 0   ? Hsv(25, 0.6f, rng.Range(0.3, 0.55))
                         : k == 1 ? Hsv(0, 0, 0.1f)
                         : k == 2 ? Hsv(40, 0.1f, 0.9f)
                         : k == 3 ? Hsv(38, 0.6f, 0.8f)
                                  : Hsv(0, 0, 0.55f);
  const Surface fur = MakeSurface(Style::kFur, coat, rng);
  const float lw = 0.08f * len, body_y = by - 0.55f * h;
  for (float lx : {-0.27f, -0.17f, 0.17f, 0.27f}) {
    const float x = bx + lx * len;
    c.Rect(std::min(X(x - lw / 2), X(x + lw / 2)), body_y, std::max(X(x - lw / 2), X(x + lw / 2)),
           by, fur, {kDog, kLeg, 0, kFur});
  }
  c.Line(X(bx - 0.33f * len), body_y - 0.05f * h, X(bx - 0.5f * len), body_y - 0.4f * h,
         0.05f * len, fur, {kDog, kTail, 0, kFur});
  c.Ellipse(bx, body_y, 0.36f * len, 0.17f * len, 0, fur, {kDog, kTorso, 0, kFur});
  const float hx = X(bx + 0.38f * len), hy = by - 0.88f * h;
  c.Circle(hx, hy, 0.14f * len, fur, {kDog, kHead, 0, kFur});
  c.Ellipse(X(bx + 0.52f * len), hy + 0.04f * len, 0.09f * len, 0.06f * len, 0, fur,
            {kDog, kHead, 0, kFur});
}

void DrawBoat(Canvas& c, Rng& rng, float bx, float by, float len) {
  const bool flip = rng.Chance(0.5);
  auto X = [&](float x) { return flip ? 2 * bx - x : x; };
  const float x0 = bx - len / 2, x1 = bx + len / 2;
  const bool sailing = rng.Chance(0.7);
  if (sailing) {
    c.Line(X(bx), by - 0.12f * len, X(bx), by - 0.9f * len, std::max(2.f * c.unit(), 0.02f * len),
           WoodSurface(rng, kPi / 2), {kBoat, kMast, 0, kWood});
    Surface sail =
        MakeSurface(Style::kFabric, rng.Chance(0.7) ? Hsv(40, 0.05f, 0.95f) : VividColor(rng), rng);
    c.Poly({{X(bx + 0.025f * len), by - 0.85f * len},
            {X(bx + 0.025f * len), by - 0.2f * len},
            {X(bx + 0.42f * len), by - 0.2f * len}},
           sail, {kBoat, kSail, 0, kFabric});
    if (rng.Chance(0.5)) {
      c.Poly({{X(bx - 0.025f * len), by - 0.7f * len},
              {X(bx - 0.025f * len), by - 0.2f * len},
              {X(bx - 0.3f * len), by - 0.2f * len}},
             sail, {kBoat, kSail, 0, kFabric});
    }
  } else {
    c.Rect(std::min(X(bx - 0.15f * len), X(bx + 0.2f * len)), by - 0.35f * len,
           std::max(X(bx - 0.15f * len), X(bx + 0.2f * len)), by - 0.12f * len,
           PaintedSurface(rng, Hsv(0, 0, 0.93f)), {kBoat, 0, 0, kPainted});
  }
  const int kind = rng.Int(0, 3);  // wooden, painted, painted, fibreglass (plastic)
  const Surface hull = kind == 0 ? WoodSurface(rng, 0.f) : PaintedSurface(rng, VividColor(rng));
  const uint16_t hull_mat = kind == 0 ? kWood : kind == 3 ? kPlastic : kPainted;
  c.Poly({{X(x0), by - 0.15f * len},
          {X(x1), by - 0.15f * len},
          {X(x1 - 0.1f * len), by + 0.03f * len},
          {X(x0 + 0.14f * len), by + 0.03f * len}},
         hull, {kBoat, kHull, 0, hull_mat});
}

void DrawStreetLamp(Canvas& c, Rng& rng, float bx, float by, float h) {
  const float pw = std::max(2.f * c.unit(), 0.03f * h);
  const Surface metal =
      MetalSurface(rng, Hsv(rng.Range(0, 360), rng.Range(0, 0.4), rng.Range(0.08, 0.35)), bx);
  const float dir = rng.Chance(0.5) ? 1.f : -1.f;
  c.Rect(bx - pw / 2, by - h, bx + pw / 2, by, metal, {kLamp, kPole, 0, kMetal});
  const float ax = bx + dir * 0.18f * h;
  c.Line(bx, by - h + pw / 2, ax, by - h + pw / 2, pw * 0.8f, metal, {kLamp, kPole, 0, kMetal});
  const float sw = 0.09f * h, sy = by - h + pw;
  c.Ellipse(ax, sy + 0.2f * sw, sw * 0.55f, sw * 0.3f, 0,
            MakeSurface(Style::kFlat, Hsv(55, 0.35f, 1.f), rng), {kLamp, kShade, kBulb, kGlass});
  c.Poly({{ax - sw * 0.3f, sy - 0.3f * sw},
          {ax + sw * 0.3f, sy - 0.3f * sw},
          {ax + sw * 0.7f, sy + 0.15f * sw},
          {ax - sw * 0.7f, sy + 0.15f * sw}},
         metal, {kLamp, kShade, 0, kMetal});
}

void DrawFloorLamp(Canvas& c, Rng& rng, float bx, float by, float h) {
  const Surface metal =
      MetalSurface(rng, Hsv(rng.Range(30, 50), rng.Range(0, 0.5), rng.Range(0.2, 0.7)), bx);
  c.Ellipse(bx, by - 0.02f * h, 0.1f * h, 0.025f * h, 0, metal, {kLamp, kPole, 0, kMetal});
  c.Rect(bx - 0.015f * h, by - 0.8f * h, bx + 0.015f * h, by - 0.02f * h, metal,
         {kLamp, kPole, 0, kMetal});
  const float top = by - h, bot = by - 0.72f * h;
  c.Ellipse(bx, bot, 0.07f * h, 0.04f * h, 0, MakeSurface(Style::kFlat, Hsv(50, 0.3f, 1.f), rng),
            {kLamp, kShade, kBulb, kGlass});
  const Surface shade =
      MakeSurface(Style::kFabric, VividColor(rng) * 0.5f + Hsv(40, 0.2f, 0.95f) * 0.5f, rng);
  c.Poly({{bx - 0.09f * h, top},
          {bx + 0.09f * h, top},
          {bx + 0.16f * h, bot - 0.02f * h},
          {bx - 0.16f * h, bot - 0.02f * h}},
         shade, {kLamp, kShade, 0, kFabric});
}

void DrawFence(Canvas& c, Rng& rng, float x0, float x1, float by, float h) {
  const bool white = rng.Chance(0.5);
  const Surface s = white ? PaintedSurface(rng, Hsv(40, 0.04f, 0.93f)) : WoodSurface(rng, kPi / 2);
  const Labels l{kFence, 0, 0, static_cast<uint16_t>(white ? kPainted : kWood)};
  const float step = std::max(4.f * c.unit(), 0.35f * h), pw = step * 0.45f;
  for (float y : {by - 0.75f * h, by - 0.35f * h}) c.Rect(x0, y, x1, y + 0.1f * h, s, l);
  for (float x = x0; x < x1; x += step) {
    c.Poly(
        {{x, by}, {x, by - 0.9f * h}, {x + pw / 2, by - h}, {x + pw, by - 0.9f * h}, {x + pw, by}},
        s, l);
  }
}

void DrawCloud(Canvas& c, Rng& rng, float cx, float cy, float w) {
  Surface s = MakeSurface(Style::kCloud, Hsv(210, rng.Range(0, 0.08), rng.Range(0.8, 1.0)), rng);
  const int blobs = rng.Int(3, 6);
  for (int i = 0; i < blobs; ++i) {
    c.Ellipse(cx + w * rng.Range(-0.4, 0.4), cy + w * rng.Range(-0.1, 0.08),
              w * rng.Range(0.18, 0.3), w * rng.Range(0.1, 0.18), 0, s, {kCloud, 0, 0, 0});
  }
}

void DrawTable(Canvas& c, Rng& rng, float bx, float by, float w) {
  const Surface wood = WoodSurface(rng, 0.f);
  const float top = by - 0.5f * w, th = 0.05f * w, lw = 0.05f * w;
  for (float lx : {-0.42f, 0.37f}) {
    c.Rect(bx + lx * w, top + th, bx + lx * w + lw, by, wood, {kTable, kLeg, 0, kWood});
  }
  c.Poly({{bx - 0.42f * w, top - 0.12f * w},
          {bx + 0.42f * w, top - 0.12f * w},
          {bx + 0.5f * w, top},
          {bx - 0.5f * w, top}},
         wood, {kTable, kTabletop, 0, kWood});
  c.Rect(bx - 0.5f * w, top, bx + 0.5f * w, top + th, wood, {kTable, kTabletop, 0, kWood});
}

void DrawChair(Canvas& c, Rng& rng, float bx, float by, float h) {
  const bool flip = rng.Chance(0.5);
  auto X = [&](float x) { return flip ? 2 * bx - x : x; };
  // Wooden, wooden with a cushion, or a one-piece plastic chair.
  const int kind = rng.Int(0, 2);
  const Surface frame =
      kind == 2 ? MakeSurface(Style::kFlat, VividColor(rng), rng) : WoodSurface(rng, kPi / 2);
  const uint16_t frame_mat = kind == 2 ? kPlastic : kWood;
  const Surface seat = kind == 1 ? MakeSurface(Style::kFabric, VividColor(rng), rng) : frame;
  const uint16_t seat_mat = kind == 1 ? static_cast<uint16_t>(kFabric) : frame_mat;
  const float sy = by - 0.48f * h, sw = 0.42f * h, lw = 0.045f * h;
  for (float lx : {-0.5f, 0.5f}) {
    const float x = bx + lx * sw;
    c.Rect(std::min(X(x - lw / 2), X(x + lw / 2)), sy, std::max(X(x - lw / 2), X(x + lw / 2)), by,
           frame, {kChair, kLeg, 0, frame_mat});
  }
  c.Rect(std::min(X(bx - 0.5f * sw), X(bx - 0.5f * sw + 0.08f * h)), by - h,
         std::max(X(bx - 0.5f * sw), X(bx - 0.5f * sw + 0.08f * h)), sy, seat,
         {kChair, kBack, 0, seat_mat});
  c.Rect(bx - 0.55f * sw, sy - 0.06f * h, bx + 0.55f * sw, sy, seat, {kChair, kSeat, 0, seat_mat});
}

void DrawBed(Canvas& c, Rng& rng, float bx, float by, float w) {
  const bool flip = rng.Chance(0.5);
  auto X = [&](float x) { return flip ? 2 * bx - x : x; };
  const Surface wood = WoodSurface(rng, kPi / 2);
  const float x0 = bx - w / 2, x1 = bx + w / 2;
  for (float lx : {x0 + 0.03f * w, x1 - 0.06f * w}) {
    c.Rect(std::min(X(lx), X(lx + 0.03f * w)), by - 0.06f * w, std::max(X(lx), X(lx + 0.03f * w)),
           by, wood, {kBed, kLeg, 0, kWood});
  }
  c.Rect(std::min(X(x0), X(x0 + 0.07f * w)), by - 0.55f * w, std::max(X(x0), X(x0 + 0.07f * w)),
         by - 0.03f * w, wood, {kBed, kHeadboard, 0, kWood});
  Surface blanket = MakeSurface(Style::kFabric, VividColor(rng), rng);
  if (rng.Chance(0.5)) {
    blanket.b = rng.Range(6, 14);
    blanket.c2 = Hsv(0, 0, 0.95f);
  }
  c.Rect(std::min(X(x0 + 0.07f * w), X(x1)), by - 0.3f * w, std::max(X(x0 + 0.07f * w), X(x1)),
         by - 0.06f * w, blanket, {kBed, 0, 0, kFabric});
  c.Ellipse(X(x0 + 0.2f * w), by - 0.31f * w, 0.11f * w, 0.05f * w, 0,
            MakeSurface(Style::kFabric, Hsv(40, 0.05f, 0.95f), rng), {kBed, kPillow, 0, kFabric});
}

void DrawPainting(Canvas& c, Rng& rng, float x0, float y0, float w, float h) {
  const Surface frame =
      rng.Chance(0.5) ? WoodSurface(rng, 0.f) : MetalSurface(rng, Hsv(45, 0.6f, 0.75f), x0 + w / 2);
  const uint16_t frame_mat = frame.style == Style::kWood ? kWood : kMetal;
  c.Rect(x0, y0, x0 + w, y0 + h, frame, {kPainting, kFrame, 0, frame_mat});
  const float t = 0.08f * std::min(w, h);
  c.Rect(x0 + t, y0 + t, x0 + w - t, y0 + h - t, PaintedSurface(rng, VividColor(rng)),
         {kPainting, 0, 0, 0});
  const int shapes = rng.Int(1, 4);
  for (int i = 0; i < shapes; ++i) {
    c.Ellipse(x0 + t + (w - 2 * t) * rng.Range(0.2, 0.8),
              y0 + t + (h - 2 * t) * rng.Range(0.2, 0.8), (w - 2 * t) * rng.Range(0.08, 0.25),
              (h - 2 * t) * rng.Range(0.08, 0.25), rng.Range(0, 180),
              PaintedSurface(rng, VividColor(rng)), {kPainting, 0, 0, 0});
  }
}

// ---------------------------------------------------------------------------------------------
// Backgrounds.

void DrawSky(Canvas& c, Rng& rng, float horizon) {
  const int kind = rng.Int(0, 9);
  Surface sky = MakeSurface(Style::kGradient, cv::Vec3f(), rng);
  if (kind < 6) {  // blue
    const float hue = rng.Range(195, 225);
    sky.c1 = Hsv(hue, rng.Range(0.5, 0.85), rng.Range(0.6, 0.9));
    sky.c2 = Hsv(hue, rng.Range(0.1, 0.35), rng.Range(0.85, 1.0));
  } else if (kind < 9) {  // overcast
    sky.c1 = Hsv(210, rng.Range(0, 0.1), rng.Range(0.5, 0.75));
    sky.c2 = Hsv(210, rng.Range(0, 0.06), rng.Range(0.75, 0.95));
  } else {  // dusk
    sky.c1 = Hsv(rng.Range(240, 280), rng.Range(0.4, 0.7), rng.Range(0.3, 0.55));
    sky.c2 = Hsv(rng.Range(10, 40), rng.Range(0.6, 0.9), rng.Range(0.85, 1.0));
  }
  sky.a = 0;
  sky.b = horizon;
  c.Rect(0, 0, static_cast<float>(c.size()), horizon + 1, sky, {kSky, 0, 0, 0});
  const int clouds = rng.Int(0, 3);
  for (int i = 0; i < clouds && horizon > 0.2f * c.size(); ++i) {
    DrawCloud(c, rng, c.size() * rng.Range(0.0, 1.0), horizon * rng.Range(0.15, 0.7),
              c.size() * rng.Range(0.15, 0.35));
  }
  if (rng.Chance(0.3)) {  // mountains on the horizon
    const float S = static_cast<float>(c.size());
    std::vector<cv::Point2f> pts{{-1, horizon + 1}};
    const int peaks = rng.Int(1, 3);
    for (int i = 0; i < peaks; ++i) {
      const float px = S * (i + rng.Range(0.2, 0.8)) / peaks;
      pts.push_back({px - S * rng.Range(0.1, 0.3) / peaks, horizon - S * rng.Range(0.0, 0.04)});
      pts.push_back({px, horizon - S * rng.Range(0.07, 0.2)});
    }
    pts.push_back({S + 1, horizon - S * rng.Range(0.0, 0.05)});
    pts.push_back({S + 1, horizon + 1});
    Surface rock = StoneSurface(rng);
    rock.c1 = Hsv(rng.Range(90, 240), rng.Range(0.1, 0.35), rng.Range(0.35, 0.6));
    c.Poly(pts, rock, {kMountain, 0, 0, kStone});
  }
}

Surface GrassSurface(Rng& rng) {
  return MakeSurface(Style::kGrass,
                     Hsv(rng.Range(70, 125), rng.Range(0.45, 0.85), rng.Range(0.3, 0.7)), rng);
}
Surface SandSurface(Rng& rng) {
  return MakeSurface(Style::kSand,
                     Hsv(rng.Range(30, 48), rng.Range(0.25, 0.5), rng.Range(0.7, 0.92)), rng);
}
Surface WaterSurface(Rng& rng) {
  return MakeSurface(Style::kWater,
                     Hsv(rng.Range(180, 225), rng.Range(0.4, 0.85), rng.Range(0.35, 0.75)), rng);
}

// Stones lying on a stuff region: annotated as that object (the coarse object annotation) but with
// their own material, which makes object coverage exceed material coverage for grass and sand.
void DrawStones(Canvas& c, Rng& rng, uint16_t object, float y0, float y1, int count) {
  const float S = static_cast<float>(c.size());
  for (int i = 0; i < count; ++i) {
    const float y = rng.Range(y0, y1), scale = 0.4f + 0.9f * (y - y0) / std::max(1.f, y1 - y0);
    c.Ellipse(S * rng.Range(0, 1), y, S * rng.Range(0.02, 0.06) * scale,
              S * rng.Range(0.012, 0.03) * scale, rng.Range(-20, 20), StoneSurface(rng),
              {object, 0, 0, kStone});
  }
}

// Sun glare on water: object water whose material annotators could not tell (unlabeled).
void DrawGlare(Canvas& c, Rng& rng, float y0, float y1) {
  const float S = static_cast<float>(c.size());
  const int count = rng.Int(1, 3);
  for (int i = 0; i < count; ++i) {
    c.Ellipse(S * rng.Range(0, 1), rng.Range(y0, y1), S * rng.Range(0.04, 0.12),
              S * rng.Range(0.006, 0.015), 0, MakeSurface(Style::kFlat, Hsv(50, 0.1f, 0.98f), rng),
              {kWater, 0, 0, 0});
  }
}

// ---------------------------------------------------------------------------------------------
// Scene composition: objects are collected with their base line, sorted far to near, then drawn.

struct Item {
  float by;  // base line: larger is nearer
  std::function<void()> draw;
};

class SceneBuilder {
 public:
  SceneBuilder(Canvas& c, Rng& rng, float horizon) : c_(c), rng_(rng), horizon_(horizon) {}
  float S() const { return static_cast<float>(c_.size()); }
  // A random base line between fractions f0 and f1 of the ground (0 = horizon, 1 = bottom edge).
  float Base(double f0, double f1) { return horizon_ + (S() - horizon_) * rng_.Range(f0, f1); }
  // Perspective scale at base line by: far objects are small.
  float Depth(float by) const {
    return 0.3f + 0.85f * (by - horizon_) / std::max(1.f, S() - horizon_);
  }
  float X() { return S() * rng_.Range(0.02, 0.98); }

  void Add(float by, std::function<void()> draw) { items_.push_back({by, std::move(draw)}); }
  void House(double f0, double f1) {
    const float by = Base(f0, f1), x = X(), h = S() * rng_.Range(0.35, 0.55) * Depth(by) * 1.8f;
    Add(by, [=] { DrawHouse(c_, rng_, x, by, h); });
  }
  void Tree(double f0, double f1, double scale = 1.0) {
    const float by = Base(f0, f1), x = X(), h = S() * rng_.Range(0.4, 0.75) * Depth(by) * scale;
    Add(by, [=] { DrawTree(c_, rng_, x, by, h); });
  }
  void Car(double f0, double f1) {
    const float by = Base(f0, f1), x = X(), len = S() * rng_.Range(0.3, 0.45) * Depth(by);
    Add(by, [=] { DrawCar(c_, rng_, x, by, len); });
  }
  void Person(double f0, double f1) {
    const float by = Base(f0, f1), x = X(), h = S() * rng_.Range(0.35, 0.55) * Depth(by);
    Add(by, [=] { DrawPerson(c_, rng_, x, by, h); });
  }
  void Dog(double f0, double f1) {
    const float by = Base(f0, f1), x = X(), len = S() * rng_.Range(0.18, 0.28) * Depth(by);
    Add(by, [=] { DrawDog(c_, rng_, x, by, len); });
  }
  void StreetLamp(double f0, double f1) {
    const float by = Base(f0, f1), x = X(), h = S() * rng_.Range(0.55, 0.75) * Depth(by);
    Add(by, [=] { DrawStreetLamp(c_, rng_, x, by, h); });
  }
  void FloorLamp(double f0, double f1) {
    const float by = Base(f0, f1), x = X(), h = S() * rng_.Range(0.5, 0.7) * Depth(by);
    Add(by, [=] { DrawFloorLamp(c_, rng_, x, by, h); });
  }
  void Boat(double f0, double f1) {
    const float by = Base(f0, f1), x = X(), len = S() * rng_.Range(0.3, 0.5) * Depth(by);
    Add(by, [=] { DrawBoat(c_, rng_, x, by, len); });
  }
  void Fence(double f0, double f1) {
    const float by = Base(f0, f1), h = S() * rng_.Range(0.08, 0.14) * Depth(by);
    const float x0 = S() * rng_.Range(-0.1, 0.5), x1 = x0 + S() * rng_.Range(0.3, 0.9);
    Add(by, [=] { DrawFence(c_, rng_, x0, x1, by, h); });
  }
  void Table(double f0, double f1) {
    const float by = Base(f0, f1), x = X(), w = S() * rng_.Range(0.35, 0.55) * Depth(by);
    Add(by, [=] { DrawTable(c_, rng_, x, by, w); });
  }
  void Chair(double f0, double f1) {
    const float by = Base(f0, f1), x = X(), h = S() * rng_.Range(0.3, 0.42) * Depth(by);
    Add(by, [=] { DrawChair(c_, rng_, x, by, h); });
  }
  void Bed(double f0, double f1) {
    const float by = Base(f0, f1), x = S() * rng_.Range(0.25, 0.75),
                w = S() * rng_.Range(0.55, 0.8) * Depth(by);
    Add(by, [=] { DrawBed(c_, rng_, x, by, w); });
  }

  void Draw() {
    std::stable_sort(items_.begin(), items_.end(),
                     [](const Item& a, const Item& b) { return a.by < b.by; });
    for (const Item& item : items_) item.draw();
  }

 private:
  Canvas& c_;
  Rng& rng_;
  float horizon_;
  std::vector<Item> items_;
};

void RenderOutdoor(Layout layout, Canvas& c, Rng& rng) {
  const float S = static_cast<float>(c.size());
  const float horizon = S * rng.Range(0.3, 0.55);
  DrawSky(c, rng, horizon);
  SceneBuilder b(c, rng, horizon);
  auto ground = [&](const Surface& s, Labels l, float y0) { c.Rect(-1, y0, S + 1, S + 1, s, l); };
  switch (layout) {
    case Layout::kStreet:
    case Layout::kParkingLot: {
      ground(MakeSurface(Style::kAsphalt,
                         Hsv(rng.Range(0, 360), rng.Range(0, 0.06), rng.Range(0.25, 0.5)), rng),
             {kRoad, 0, 0, kAsphalt}, horizon);
      // Dashed lane markings in perspective: painted, annotated as road.
      const Surface paint =
          PaintedSurface(rng, rng.Chance(0.7) ? Hsv(0, 0, 0.92f) : Hsv(50, 0.8f, 0.9f));
      const float cx = S * rng.Range(0.3, 0.7);
      for (float f = 0.08f; f < 1.f; f += 0.22f) {
        const float y0 = horizon + (S - horizon) * f, y1 = horizon + (S - horizon) * (f + 0.1f);
        const float w0 = S * 0.004f + 0.02f * S * f, w1 = S * 0.004f + 0.02f * S * (f + 0.1f);
        c.Poly({{cx - w0, y0}, {cx + w0, y0}, {cx + w1, y1}, {cx - w1, y1}}, paint,
               {kRoad, 0, 0, kPainted});
      }
      if (layout == Layout::kStreet) {
        if (rng.Chance(0.3))
          ground(GrassSurface(rng), {kGrass, 0, 0, kGrass}, S * rng.Range(0.86, 0.95));
        const int houses = rng.Int(1, 3);
        for (int i = 0; i < houses; ++i) b.House(0.0, 0.1);
        const int cars = rng.Int(1, 3);
        for (int i = 0; i < cars; ++i) b.Car(0.3, 1.0);
        if (rng.Chance(0.5)) b.StreetLamp(0.1, 0.9);
        if (rng.Chance(0.4)) b.Tree(0.0, 0.3);
        if (rng.Chance(0.4)) b.Person(0.2, 1.0);
        if (rng.Chance(0.15)) b.Dog(0.3, 1.0);
        if (rng.Chance(0.15)) b.Fence(0.05, 0.2);
      } else {
        const int cars = rng.Int(2, 4);
        for (int i = 0; i < cars; ++i) b.Car(0.15, 1.0);
        if (rng.Chance(0.6)) b.StreetLamp(0.1, 0.9);
        if (rng.Chance(0.3)) b.Person(0.2, 1.0);
        if (rng.Chance(0.3)) b.Tree(0.0, 0.2);
      }
      break;
    }
    case Layout::kBeach: {
      const float shore = horizon + (S - horizon) * rng.Range(0.15, 0.45);
      ground(WaterSurface(rng), {kWater, 0, 0, kWater}, horizon);
      DrawGlare(c, rng, horizon, shore);
      std::vector<cv::Point2f> sand{{-1, S + 1}};
      for (int i = 0; i <= 8; ++i) {
        sand.push_back({S * i / 8.f, shore + S * 0.02f * std::sin(i * rng.Range(0.8, 1.6))});
      }
      sand.push_back({S + 1, S + 1});
      c.Poly(sand, SandSurface(rng), {kSand, 0, 0, kSand});
      DrawStones(c, rng, kSand, shore, S, rng.Int(1, 4));
      const int people = rng.Int(0, 3);
      for (int i = 0; i < people; ++i) b.Person(0.3, 1.0);
      if (rng.Chance(0.2)) b.Dog(0.4, 1.0);
      if (rng.Chance(0.3)) b.Boat(0.02, 0.12);
      if (rng.Chance(0.2)) b.Tree(0.4, 0.9);
      break;
    }
    case Layout::kHarbor: {
      ground(WaterSurface(rng), {kWater, 0, 0, kWater}, horizon);
      DrawGlare(c, rng, horizon, S);
      if (rng.Chance(0.4)) {  // far shore with small houses
        ground(GrassSurface(rng), {kGrass, 0, 0, kGrass}, horizon);
        ground(WaterSurface(rng), {kWater, 0, 0, kWater}, horizon + S * 0.035f);
        for (int i = rng.Int(1, 3); i > 0; --i) {
          const float x = S * rng.Range(0, 1), h = S * rng.Range(0.08, 0.15);
          b.Add(horizon - 1,
                [&c, &rng, x, horizon, h] { DrawHouse(c, rng, x, horizon + 0.03f * c.size(), h); });
        }
      }
      const int boats = rng.Int(1, 3);
      for (int i = 0; i < boats; ++i) b.Boat(0.1, 0.95);
      if (rng.Chance(0.2)) b.Person(0.8, 1.0);
      break;
    }
    case Layout::kForest:
    case Layout::kYard:
    case Layout::kPark: {
      ground(GrassSurface(rng), {kGrass, 0, 0, kGrass}, horizon);
      DrawStones(c, rng, kGrass, horizon, S, rng.Int(1, 4));
      if (layout == Layout::kForest) {
        const int trees = rng.Int(4, 9);
        for (int i = 0; i < trees; ++i) b.Tree(0.0, 1.0, 1.3);
        if (rng.Chance(0.2)) b.Person(0.3, 1.0);
        if (rng.Chance(0.2)) b.Dog(0.3, 1.0);
        if (rng.Chance(0.1)) b.Fence(0.1, 0.5);
      } else if (layout == Layout::kYard) {
        const int houses = rng.Int(1, 2);
        for (int i = 0; i < houses; ++i) b.House(0.0, 0.25);
        if (rng.Chance(0.6)) {
          for (int i = rng.Int(1, 2); i > 0; --i) b.Tree(0.0, 0.8);
        }
        if (rng.Chance(0.4)) b.Fence(0.3, 0.8);
        if (rng.Chance(0.3)) b.Person(0.3, 1.0);
        if (rng.Chance(0.3)) b.Dog(0.3, 1.0);
        if (rng.Chance(0.2)) b.Car(0.3, 1.0);
      } else {
        const int people = rng.Int(1, 3);
        for (int i = 0; i < people; ++i) b.Person(0.2, 1.0);
        if (rng.Chance(0.5)) b.Dog(0.3, 1.0);
        for (int i = rng.Int(0, 2); i > 0; --i) b.Tree(0.0, 0.6);
        if (rng.Chance(0.4)) b.StreetLamp(0.1, 0.8);
        if (rng.Chance(0.2)) b.Fence(0.1, 0.6);
      }
      break;
    }
    default:
      break;
  }
  b.Draw();
}

void RenderIndoor(Layout layout, Canvas& c, Rng& rng) {
  const float S = static_cast<float>(c.size());
  const float horizon = S * rng.Range(0.42, 0.62);
  Surface wall;
  uint16_t wall_mat;
  switch (rng.Int(0, 2)) {
    case 0:
      wall =
          PaintedSurface(rng, Hsv(rng.Range(0, 360), rng.Range(0.05, 0.45), rng.Range(0.6, 0.95)));
      wall_mat = kPainted;
      break;
    case 1:
      wall = BrickSurface(rng);
      wall_mat = kBrick;
      break;
    default:
      wall = WoodSurface(rng, kPi / 2);
      wall_mat = kWood;
      break;
  }
  c.Rect(-1, -1, S + 1, horizon + 1, wall, {kWall, 0, 0, wall_mat});
  Surface floor;
  uint16_t floor_mat;
  switch (rng.Int(0, 2)) {
    case 0:
      floor = WoodSurface(rng, 0.f);
      floor_mat = kWood;
      break;
    case 1:
      floor = MakeSurface(Style::kTile,
                          Hsv(rng.Range(0, 360), rng.Range(0, 0.3), rng.Range(0.5, 0.9)), rng);
      floor.c2 = floor.c1 * 0.7f;
      floor_mat = kTile;
      break;
    default:
      floor = MakeSurface(Style::kCarpet, VividColor(rng) * 0.7f, rng);
      floor_mat = kCarpet;
      break;
  }
  c.Rect(-1, horizon, S + 1, S + 1, floor, {kFloor, 0, 0, floor_mat});
  if (rng.Chance(0.6) && horizon > 0.3f * S) {
    const float w = S * rng.Range(0.15, 0.3), h = w * rng.Range(0.6, 1.2);
    DrawPainting(c, rng, S * rng.Range(0.0, 0.8), std::max(2.f, horizon * rng.Range(0.1, 0.4)), w,
                 std::min(h, horizon * 0.55f));
  }
  SceneBuilder b(c, rng, horizon);
  if (layout == Layout::kBedroom) {
    b.Bed(0.35, 0.8);
    if (rng.Chance(0.6)) b.FloorLamp(0.05, 0.4);
    if (rng.Chance(0.2)) b.Person(0.3, 1.0);
    if (rng.Chance(0.1)) b.Dog(0.5, 1.0);
    if (rng.Chance(0.2)) b.Chair(0.1, 0.5);
  } else {
    b.Table(0.3, 0.7);
    for (int i = rng.Int(1, 3); i > 0; --i) b.Chair(0.2, 1.0);
    if (rng.Chance(0.4)) b.FloorLamp(0.05, 0.4);
    if (rng.Chance(0.3)) b.Person(0.3, 1.0);
  }
  b.Draw();
}

// A texture-only image: one of six whole-image patterns in two colours.
void RenderTexture(Canvas& c, Rng& rng, RenderedImage* out) {
  const Label textures[] = {kStriped, kDotted, kChequered, kZigzagged, kGrid, kCrosshatched};
  const Label texture = textures[rng.Int(0, 5)];
  out->texture = texture;
  const float S = static_cast<float>(c.size()), u = c.unit();
  const float h1 = rng.Range(0, 360);
  const float v1 = rng.Range(0.1, 0.95);
  const float v2 = v1 > 0.5f ? rng.Range(0.05, v1 - 0.35) : rng.Range(v1 + 0.35, 1.0);
  const cv::Vec3f c1 = Hsv(h1, rng.Range(0, 0.9), v1);
  const cv::Vec3f c2 =
      Hsv(rng.Chance(0.5) ? h1 + rng.Range(-30, 30) : rng.Range(0, 360), rng.Range(0, 0.9), v2);
  const float angle = rng.Range(0, kPi), ca = std::cos(angle), sa = std::sin(angle);
  const float period = u * (texture == kCrosshatched ? rng.Range(6, 12) : rng.Range(10, 28));
  const float duty = rng.Range(0.3, 0.6), dot = rng.Range(0.15, 0.32), line = rng.Range(0.1, 0.2);
  const float amp = rng.Range(0.5, 1.5);
  const uint32_t salt = static_cast<uint32_t>(rng.Next());
  for (int y = 0; y < c.size(); ++y) {
    cv::Vec3b* row = out->image.ptr<cv::Vec3b>(y);
    for (int x = 0; x < c.size(); ++x) {
      const float px = x - S / 2, py = y - S / 2;
      const float pu = (px * ca + py * sa) / period, pv = (-px * sa + py * ca) / period;
      bool fg = false;
      switch (texture) {
        case kStriped:
          fg = Frac(pu) < duty;
          break;
        case kDotted: {
          const float du = Frac(pu) - 0.5f, dv = Frac(pv) - 0.5f;
          fg = du * du + dv * dv < dot * dot;
          break;
        }
        case kChequered:
          fg = ((static_cast<int>(std::floor(pu)) + static_cast<int>(std::floor(pv))) & 1) != 0;
          break;
        case kZigzagged: {
          const float tri = std::fabs(Frac(pu * 0.5f) * 2.f - 1.f);
          fg = Frac(pv + amp * tri) < 0.5f;
          break;
        }
        case kGrid:
          fg = Frac(pu) < line || Frac(pv) < line;
          break;
        default:  // crosshatched
          fg = Frac((pu + pv) * 0.7071f) < line * 1.5f || Frac((pu - pv) * 0.7071f) < line * 1.5f;
          break;
      }
      const float n = Hash01(x, y, salt) - 0.5f;
      const cv::Vec3f col = (fg ? c2 : c1) * (1.f + 0.1f * n);
      row[x] = cv::Vec3b(cv::saturate_cast<uint8_t>(col[0]), cv::saturate_cast<uint8_t>(col[1]),
                         cv::saturate_cast<uint8_t>(col[2]));
    }
  }
}

// Lighting gradient, colour cast, sensor noise and a slight blur.
void PostProcess(RenderedImage* out, Rng& rng) {
  const int S = out->image.rows;
  const float g0 = rng.Range(0.75, 1.15), gx = rng.Range(-0.3, 0.3), gy = rng.Range(-0.3, 0.3);
  const cv::Vec3f cast(rng.Range(0.93, 1.07), rng.Range(0.95, 1.05), rng.Range(0.93, 1.07));
  const float noise = rng.Range(3, 14);
  const uint32_t salt = static_cast<uint32_t>(rng.Next());
  for (int y = 0; y < S; ++y) {
    cv::Vec3b* row = out->image.ptr<cv::Vec3b>(y);
    const float gyy = g0 + gy * (static_cast<float>(y) / S - 0.5f);
    for (int x = 0; x < S; ++x) {
      const float gain = gyy + gx * (static_cast<float>(x) / S - 0.5f);
      for (int k = 0; k < 3; ++k) {
        const float n = (Hash01(x * 3 + k, y, salt) - 0.5f) * noise;
        row[x][k] = cv::saturate_cast<uint8_t>(row[x][k] * gain * cast[k] + n);
      }
    }
  }
  if (rng.Chance(0.8)) {
    cv::GaussianBlur(out->image, out->image, cv::Size(3, 3), rng.Range(0.4, 0.9), 0,
                     cv::BORDER_REFLECT);
  }
}

}  // namespace

uint64_t ImageSeed(uint64_t seed, int64_t index) {
  Rng a(seed ^ 0x6a09e667f3bcc908ull);
  Rng b(static_cast<uint64_t>(index) ^ (a.Next() * 0xbb67ae8584caa73bull));
  return b.Next() ^ a.Next();
}

void RenderImage(const RenderOptions& options, Rng* rng_ptr, RenderedImage* out) {
  Rng& rng = *rng_ptr;
  const int S = options.size;
  out->image.create(S, S, CV_8UC3);
  for (cv::Mat* m : {&out->object, &out->material, &out->part1, &out->part2}) {
    m->create(S, S, CV_16UC1);
    m->setTo(0);
  }
  out->image.setTo(cv::Scalar(0, 0, 0));
  out->texture = kUnlabeled;
  Canvas canvas(out, S);
  if (rng.Chance(options.texture_fraction)) {
    out->layout = Layout::kTexture;
    RenderTexture(canvas, rng, out);
  } else {
    // Layout weights (out of 100): outdoor scenes dominate, as in Broden.
    static constexpr struct {
      Layout layout;
      int weight;
    } kLayouts[] = {{Layout::kStreet, 16}, {Layout::kParkingLot, 8}, {Layout::kBeach, 11},
                    {Layout::kHarbor, 9},  {Layout::kForest, 11},    {Layout::kYard, 12},
                    {Layout::kPark, 12},   {Layout::kBedroom, 10},   {Layout::kDiningRoom, 11}};
    int pick = rng.Int(0, 99);
    Layout layout = Layout::kStreet;
    for (const auto& l : kLayouts) {
      if (pick < l.weight) {
        layout = l.layout;
        break;
      }
      pick -= l.weight;
    }
    out->layout = layout;
    if (layout == Layout::kBedroom || layout == Layout::kDiningRoom) {
      RenderIndoor(layout, canvas, rng);
    } else {
      RenderOutdoor(layout, canvas, rng);
    }
  }
  PostProcess(out, rng);
}

}  // namespace nd::synth
