#include "tools/make_broden/synth_labels.h"

#include <algorithm>
#include <array>
#include <cassert>

namespace nd::synth {
namespace {

constexpr uint32_t C(Category c) { return 1u << c; }

// Indexed by Label; the order must match the enum (checked by the static_assert below).
constexpr LabelInfo kLabelTable[] = {
    {"-", 0, ""},
    // color
    {"black-c", C(kColor), ""},
    {"blue-c", C(kColor), ""},
    {"brown-c", C(kColor), ""},
    {"grey-c", C(kColor), "gray-c"},
    {"green-c", C(kColor), ""},
    {"orange-c", C(kColor), ""},
    {"pink-c", C(kColor), ""},
    {"purple-c", C(kColor), ""},
    {"red-c", C(kColor), ""},
    {"white-c", C(kColor), ""},
    {"yellow-c", C(kColor), ""},
    // object
    {"sky", C(kObject), ""},
    {"cloud", C(kObject), ""},
    {"mountain", C(kObject), "mount"},
    {"grass", C(kObject) | C(kMaterial), ""},
    {"road", C(kObject), "route"},
    {"sand", C(kObject) | C(kMaterial), ""},
    {"water", C(kObject) | C(kMaterial), ""},
    {"floor", C(kObject), "flooring"},
    {"wall", C(kObject), ""},
    {"house", C(kObject), "building"},
    {"tree", C(kObject), ""},
    {"car", C(kObject), "auto;automobile"},
    {"person", C(kObject), "individual;someone"},
    {"dog", C(kObject), ""},
    {"boat", C(kObject), ""},
    {"lamp", C(kObject), "streetlight"},
    {"fence", C(kObject), ""},
    {"table", C(kObject), ""},
    {"chair", C(kObject), ""},
    {"bed", C(kObject), ""},
    {"painting", C(kObject), "picture"},
    // material
    {"wood", C(kMaterial), ""},
    {"brick", C(kMaterial), ""},
    {"stone", C(kMaterial), "rock"},
    {"glass", C(kMaterial), ""},
    {"metal", C(kMaterial), ""},
    {"fabric", C(kMaterial), "cloth"},
    {"skin", C(kMaterial), ""},
    {"foliage", C(kMaterial), "leaves"},
    {"asphalt", C(kMaterial), ""},
    {"tile", C(kMaterial), ""},
    {"carpet", C(kMaterial), ""},
    {"painted", C(kMaterial), "paint"},
    {"plastic", C(kMaterial), ""},
    {"fur", C(kMaterial), ""},
    // part, first layer
    {"roof", C(kPart), ""},
    {"door", C(kPart), ""},
    {"window", C(kPart), ""},
    {"chimney", C(kPart), ""},
    {"trunk", C(kPart), ""},
    {"crown", C(kPart), "treetop"},
    {"wheel", C(kPart), ""},
    {"headlight", C(kPart), ""},
    {"head", C(kPart), ""},
    {"torso", C(kPart), "body"},
    {"arm", C(kPart), ""},
    {"leg", C(kPart), ""},
    {"tail", C(kPart), ""},
    {"hull", C(kPart), ""},
    {"sail", C(kPart), ""},
    {"mast", C(kPart), ""},
    {"pole", C(kPart), ""},
    {"shade", C(kPart), "lampshade"},
    {"tabletop", C(kPart), "top"},
    {"seat", C(kPart), ""},
    {"back", C(kPart), "backrest"},
    {"headboard", C(kPart), ""},
    {"pillow", C(kPart), ""},
    {"frame", C(kPart), ""},
    // part, second layer
    {"pane", C(kPart), "windowpane"},
    {"hubcap", C(kPart), ""},
    {"hair", C(kPart), ""},
    {"bulb", C(kPart), ""},
    {"knob", C(kPart), "doorknob"},
    // scene
    {"street-s", C(kScene), ""},
    {"parking_lot-s", C(kScene), ""},
    {"beach-s", C(kScene), ""},
    {"harbor-s", C(kScene), ""},
    {"forest-s", C(kScene), ""},
    {"yard-s", C(kScene), ""},
    {"park-s", C(kScene), ""},
    {"bedroom-s", C(kScene), ""},
    {"dining_room-s", C(kScene), ""},
    // texture
    {"striped", C(kTexture), ""},
    {"dotted", C(kTexture), ""},
    {"chequered", C(kTexture), "checkered"},
    {"zigzagged", C(kTexture), "zigzag"},
    {"grid", C(kTexture), ""},
    {"crosshatched", C(kTexture), ""},
};
static_assert(sizeof(kLabelTable) / sizeof(kLabelTable[0]) == kNumLabels,
              "kLabelTable must have one entry per Label");

// Names a colour by rules on HSV (r, g, b in 0..255). Thresholds were chosen by eye on the
// basic-colour-term boundaries; what matters here is that the naming is fixed and plausible.
Label NameColorExact(float r, float g, float b) {
  const float mx = std::max({r, g, b}), mn = std::min({r, g, b});
  const float v = mx / 255.f;
  const float chroma = (mx - mn) / 255.f;
  const float s = mx > 0 ? (mx - mn) / mx : 0.f;
  if (v < 0.18f) return kBlackC;
  if (chroma < 0.10f || s < 0.12f) {
    if (v > 0.85f) return kWhiteC;
    if (v < 0.28f) return kBlackC;
    return kGreyC;
  }
  float h;  // degrees in [0, 360)
  if (mx == r) {
    h = 60.f * (g - b) / (mx - mn);
  } else if (mx == g) {
    h = 60.f * (2.f + (b - r) / (mx - mn));
  } else {
    h = 60.f * (4.f + (r - g) / (mx - mn));
  }
  if (h < 0) h += 360.f;
  // Pale tints: pinkish ones are pink, others white.
  if (s < 0.25f && v > 0.85f) return (h >= 290.f || h < 30.f) ? kPinkC : kWhiteC;
  // Weak chroma: warm hues read as brown, the rest as grey.
  if (chroma < 0.20f && s < 0.30f) return (h < 60.f && v < 0.75f) ? kBrownC : kGreyC;
  if (h < 15.f || h >= 345.f) {
    if (v < 0.35f) return kBrownC;
    if (s < 0.55f && v > 0.70f) return kPinkC;
    return kRedC;
  }
  if (h < 45.f) {
    if (v < 0.70f || s < 0.50f) return kBrownC;
    return kOrangeC;
  }
  if (h < 70.f) return v < 0.55f ? kBrownC : kYellowC;
  if (h < 165.f) return kGreenC;
  if (h < 255.f) return kBlueC;
  if (h < 290.f) return kPurpleC;
  return v < 0.55f ? kPurpleC : kPinkC;
}

struct ColorTable {
  std::array<uint8_t, 32 * 32 * 32> label;
  ColorTable() {
    for (int r = 0; r < 32; ++r) {
      for (int g = 0; g < 32; ++g) {
        for (int b = 0; b < 32; ++b) {
          label[(r << 10) | (g << 5) | b] = static_cast<uint8_t>(
              NameColorExact(static_cast<float>(r * 8 + 4), static_cast<float>(g * 8 + 4),
                             static_cast<float>(b * 8 + 4)));
        }
      }
    }
  }
};

}  // namespace

const char* CategoryName(int category) {
  static constexpr const char* kNames[kNumCategories] = {"color", "object", "material",
                                                         "part",  "scene",  "texture"};
  assert(category >= 0 && category < kNumCategories);
  return kNames[category];
}

const LabelInfo& GetLabelInfo(int label) {
  assert(label >= 0 && label < kNumLabels);
  return kLabelTable[label];
}

Label ColorLabel(uint8_t r, uint8_t g, uint8_t b) {
  static const ColorTable* const table = new ColorTable();  // built once, thread-safe init
  return static_cast<Label>(table->label[((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3)]);
}

Label SceneForCounts(const std::vector<int64_t>& object, const std::vector<int64_t>& material,
                     int64_t grid_pixels) {
  assert(object.size() == kNumLabels && material.size() == kNumLabels);
  auto present = [grid_pixels](int64_t pixels) {
    return pixels * 200 >= grid_pixels && pixels > 0;
  };
  auto obj = [&](Label l) { return present(object[l]); };
  const bool asphalt = present(material[kAsphalt]);
  if (obj(kCar) && obj(kHouse) && asphalt) return kStreetS;
  if (obj(kCar) && asphalt && !obj(kHouse)) return kParkingLotS;
  if (obj(kWater) && obj(kSand)) return kBeachS;
  if (obj(kWater) && obj(kBoat)) return kHarborS;
  if (object[kTree] * 100 >= 15 * grid_pixels && object[kTree] > 0 && obj(kGrass)) return kForestS;
  if (obj(kHouse) && obj(kGrass)) return kYardS;
  if (obj(kGrass) && (obj(kPerson) || obj(kDog))) return kParkS;
  if (obj(kBed) && obj(kFloor)) return kBedroomS;
  if (obj(kTable) && obj(kChair) && obj(kFloor)) return kDiningRoomS;
  return kUnlabeled;
}

}  // namespace nd::synth
