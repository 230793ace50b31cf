// Views: a layer seen through another basis (SPEC.md §5 "Views", config.h ViewConfig). Direction i
// of a view has the value v_i(p) = sum_c W[i,c] a_c(p) at every spatial position p of every image,
// where a is the layer's activation as cached; calibrate, score and the report then treat the M
// directions exactly as units. Rows of W are directions: a rotation, PCA components, probes or any
// other directions (basis = "file").
//
// The transform (ApplyViewBasis): W in double, each cached value widened to double, the sum over c
// in double (Eigen's product), the result rounded to float32 like every activation. W = I gives the
// layer's values exactly.
//
// The random rotation (basis = "rotation", seed s, K units), specified so that the random numbers
// are bit-identical on every IEEE-754 platform:
//  1. Uniforms: the xoshiro256** stream Rng(s, kRotationDomain = 3, 0) of common/maths/rng.h;
//     each draw x gives U = (x >> 11) · 2^-53 in [0, 1) and u = 2U − 1 in [-1, 1).
//  2. Normals (Marsaglia's polar method): draw u, then v; s = u² + v²; if s == 0 or s >= 1 draw
//     both again; else f = sqrt(−2·PortableLog(s)/s) and the normals are u·f, then v·f. sqrt is
//     IEEE-754's correctly rounded square root; PortableLog (below) uses + − × ÷ only, compiled
//     without contraction (-ffp-contract=off), so every platform gives the same bits (not
//     std::normal_distribution, whose algorithm differs between standard libraries).
//  3. G = the K×K matrix of the first K² normals, filled row by row.
//  4. Haar (Mezzadri 2007): G = QR (Householder, Eigen's HouseholderQR); Q ← Q·diag(sign R_ii)
//     (sign 0 → +1); then, if det Q < 0, the first column of Q is negated. Q is Haar-distributed on
//     SO(K): determinant +1.
// The matrix from step 4 involves Eigen's rounding, which may differ in the last bits between
// machines (vector width); the normals of step 2 do not.
//
// The partial rotation R^α (the 2017 code's approach): the real Schur form R = U T Uᵀ (Eigen's
// RealSchur; T is block diagonal for an orthogonal R up to rounding: 2×2 blocks [[a, b], [c, d]]
// with angle θ = atan2((c − b)/2, (a + d)/2), and 1×1 blocks ±1). R^α = U T_α Uᵀ, where every 2×2
// block becomes the rotation by αθ, +1 blocks stay 1, and −1 blocks (angle π; an even number, det
// R = +1) are paired in order and each pair becomes the rotation by απ in its plane; T's
// off-diagonal rounding is dropped. α = 0 gives the identity exactly, α = 1 gives R itself.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/base/activation_map.h"
#include "common/base/config.h"
#include "common/base/status.h"

namespace nd {

inline constexpr uint64_t kRotationDomain = 3;  // rng.h stream domain of the rotations

// W: rows = directions (M), cols = the layer's units (K), row-major.
struct ViewBasis {
  int rows = 0, cols = 0;
  std::vector<double> w;  // rows*cols
};

// log(x) for finite x > 0, from frexp (exact) and the atanh series of the mantissa in [√½, √2)
// evaluated with + − × ÷ only: within 4 ulp of the library log (3 seen) and bit-identical on every
// IEEE-754 platform. REQUIRES: x > 0, finite.
double PortableLog(double x);

// The first `count` normals of step 2 for seed `seed`.
std::vector<double> RotationNormals(uint64_t seed, size_t count);

// Steps 1-4: a Haar-random K×K rotation (det +1). REQUIRES: k >= 1.
ViewBasis RandomRotation(int k, uint64_t seed);

// R^α as above. REQUIRES: r square and orthogonal; alpha in [0, 1].
// Errors: Internal when the Schur form has a block that is not a rotation (R not orthogonal).
StatusOr<ViewBasis> PartialRotation(const ViewBasis& r, double alpha);

// The basis of `view` at `alpha` for a layer of `units` units: the partial rotation, or the file's
// matrix. Errors: the file's (common/base/npy.h); InvalidArgument naming the file when its K is not
// `units` ("W.npy: 12 columns, layer4 has 256 units").
StatusOr<ViewBasis> ViewBasisFor(const ViewConfig& view, double alpha, int units);

// out = the view of `in` (out->units = w.rows, same h and w). Errors: InvalidArgument when
// in.units != w.cols. `out` must not be `in`.
Status ApplyViewBasis(const ViewBasis& w, const ActivationMap& in, ActivationMap* out);

// A view's transform, its basis built on first use (when the layer's unit count is known) and then
// shared: Apply() is thread-safe. Errors of ViewBasisFor are returned by every Apply().
class LinearView {
 public:
  LinearView(ViewConfig view, double alpha) : view_(std::move(view)), alpha_(alpha) {}
  Status Apply(const ActivationMap& in, ActivationMap* out);
  // The basis once built (nullptr before the first Apply or after an error).
  const ViewBasis* basis() const;

 private:
  ViewConfig view_;
  double alpha_;
  mutable std::mutex mu_;
  bool built_ = false;
  Status error_;
  ViewBasis basis_;
};

}  // namespace nd
