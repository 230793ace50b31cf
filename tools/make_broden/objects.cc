#include "tools/make_broden/objects.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace nd::synth {

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

}  // namespace nd::synth
