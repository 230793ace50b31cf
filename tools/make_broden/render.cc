#include "tools/make_broden/render.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "tools/make_broden/canvas.h"
#include "tools/make_broden/objects.h"

namespace nd::synth {
namespace {

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
