// The objects, skies and grounds of the synthetic scenes, each drawn with its labels (object,
// parts, material) through a Canvas. (bx, by) is the bottom centre where an object meets the
// ground; sizes are in pixels. Every function draws only from `rng`, so an image is a function of
// its seed.
#pragma once

#include <cstdint>

#include "tools/make_broden/canvas.h"

namespace nd::synth {

void DrawHouse(Canvas& c, Rng& rng, float bx, float by, float h);
void DrawTree(Canvas& c, Rng& rng, float bx, float by, float h);
void DrawCar(Canvas& c, Rng& rng, float bx, float by, float len);
void DrawPerson(Canvas& c, Rng& rng, float bx, float by, float h);
void DrawDog(Canvas& c, Rng& rng, float bx, float by, float len);
void DrawBoat(Canvas& c, Rng& rng, float bx, float by, float len);
void DrawStreetLamp(Canvas& c, Rng& rng, float bx, float by, float h);
void DrawFloorLamp(Canvas& c, Rng& rng, float bx, float by, float h);
void DrawFence(Canvas& c, Rng& rng, float x0, float x1, float by, float h);
void DrawCloud(Canvas& c, Rng& rng, float cx, float cy, float w);
void DrawTable(Canvas& c, Rng& rng, float bx, float by, float w);
void DrawChair(Canvas& c, Rng& rng, float bx, float by, float h);
void DrawBed(Canvas& c, Rng& rng, float bx, float by, float w);
void DrawPainting(Canvas& c, Rng& rng, float x0, float y0, float w, float h);
void DrawSky(Canvas& c, Rng& rng, float horizon);
Surface GrassSurface(Rng& rng);
Surface SandSurface(Rng& rng);
Surface WaterSurface(Rng& rng);
// Stones lying on a stuff region: annotated as that object (the coarse object annotation) but with
// their own material, which makes object coverage exceed material coverage for grass and sand.
void DrawStones(Canvas& c, Rng& rng, uint16_t object, float y0, float y1, int count);
// Sun glare on water: object water whose material annotators could not tell (unlabeled).
void DrawGlare(Canvas& c, Rng& rng, float y0, float y1);

}  // namespace nd::synth
