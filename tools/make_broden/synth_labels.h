// The label vocabulary of the synthetic Broden dataset written by nd-make-broden, and the two
// labelling rules that are not plain drawing: colour naming and scene rules.
//
// Label numbers are fixed by this table (they do not depend on the seed or the number of images),
// so tests may name them as constants. Numbers are global, 1..kNumLabels-1, grouped by category in
// category.csv order: color, object, material, part, scene, texture. Three labels belong to two
// categories, as "fabric" does in real Broden: grass, sand and water have rows in c_object.csv and
// c_material.csv. They are drawn as `object` stuff regions only: one label number is never written
// in two layers at one pixel (render.cc's Canvas enforces it), because such a pixel would count
// twice in the label's truth and intersections (SPEC.md §2 step 5). Their material rows therefore
// have frequency 0, and their primary category is object.
//
// Thread-safety: everything here is immutable or a pure function.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nd::synth {

// Categories in category.csv order (also the index.csv column order).
enum Category : int { kColor = 0, kObject, kMaterial, kPart, kScene, kTexture, kNumCategories };

// Name of a category as in category.csv ("color", "object", ...).
const char* CategoryName(int category);

enum Label : uint16_t {
  kUnlabeled = 0,
  // color (pixel layer <photo>_color.png): the 11 basic colour terms.
  kBlackC,
  kBlueC,
  kBrownC,
  kGreyC,
  kGreenC,
  kOrangeC,
  kPinkC,
  kPurpleC,
  kRedC,
  kWhiteC,
  kYellowC,
  // object (pixel layer <photo>_object.png): stuff regions, then things.
  kSky,
  kCloud,
  kMountain,
  kGrass,  // also material
  kRoad,
  kSand,   // also material
  kWater,  // also material
  kFloor,
  kWall,
  kHouse,
  kTree,
  kCar,
  kPerson,
  kDog,
  kBoat,
  kLamp,
  kFence,
  kTable,
  kChair,
  kBed,
  kPainting,
  // material (pixel layer <photo>_material.png), besides grass, sand, water above.
  kWood,
  kBrick,
  kStone,
  kGlass,
  kMetal,
  kFabric,
  kSkin,
  kFoliage,
  kAsphalt,
  kTile,
  kCarpet,
  kPainted,
  kPlastic,
  kFur,
  // part, first layer (<photo>_part_1.png): parts of objects.
  kRoof,
  kDoor,
  kWindow,
  kChimney,
  kTrunk,
  kCrown,
  kWheel,
  kHeadlight,
  kHead,
  kTorso,
  kArm,
  kLeg,
  kTail,
  kHull,
  kSail,
  kMast,
  kPole,
  kShade,
  kTabletop,
  kSeat,
  kBack,
  kHeadboard,
  kPillow,
  kFrame,
  // part, second layer (<photo>_part_2.png): parts of parts.
  kPane,    // of a house window
  kHubcap,  // of a wheel
  kHair,    // of a person's head
  kBulb,    // of a lamp's shade
  kKnob,    // of a house door
  // scene (whole-image number in index.csv), decided by SceneForCounts().
  kStreetS,
  kParkingLotS,
  kBeachS,
  kHarborS,
  kForestS,
  kYardS,
  kParkS,
  kBedroomS,
  kDiningRoomS,
  // texture (whole-image number in index.csv): the pattern of a texture-only image.
  kStriped,
  kDotted,
  kChequered,
  kZigzagged,
  kGrid,
  kCrosshatched,
  kNumLabels
};

struct LabelInfo {
  const char* name;     // label.csv name: colours end in "-c", scenes in "-s"
  uint32_t categories;  // bit (1 << Category) for each category the label is drawn in
  const char* syns;     // label.csv syns, ';'-separated, possibly empty
};

// Indexed by label number; entry 0 is the unlabeled slot ("-", no category).
const LabelInfo& GetLabelInfo(int label);

// The colour label (kBlackC..kYellowC) naming an 8-bit sRGB colour. Pixels are named through a
// 32x32x32 table: each channel is binned to 5 bits and the bin centre (8*bin + 4) is named by
// rules on hue, saturation and value (see synth_labels.cc). Never returns kUnlabeled.
Label ColorLabel(uint8_t r, uint8_t g, uint8_t b);

// Scene rules. A label is "present" in an image when it covers at least 1/200 of the sh×sw grid
// in its layer (pixels * 200 >= sh*sw), and "major" when it covers at least 15% (pixels * 100 >=
// 15 * sh*sw). object[l] / material[l] are the pixel counts of label l in the written object /
// material layers (indexed by label number, size kNumLabels). The first rule that holds wins:
//   1. street-s       object car, object house and material asphalt present
//   2. parking_lot-s  object car and material asphalt present, object house absent
//   3. beach-s        object water and object sand present
//   4. harbor-s       object water and object boat present
//   5. forest-s       object tree major and object grass present
//   6. yard-s         object house and object grass present
//   7. park-s         object grass present and object person or object dog present
//   8. bedroom-s      object bed and object floor present
//   9. dining_room-s  object table, object chair and object floor present
// Otherwise the image has no scene label (kUnlabeled).
Label SceneForCounts(const std::vector<int64_t>& object, const std::vector<int64_t>& material,
                     int64_t grid_pixels);

}  // namespace nd::synth
