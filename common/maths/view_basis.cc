#include "common/maths/view_basis.h"

#include <Eigen/Dense>
#include <Eigen/Eigenvalues>
#include <cmath>

#include "common/base/npy.h"
#include "common/maths/rng.h"

namespace nd {
namespace {

using RowMajorD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

ViewBasis FromEigen(const Eigen::MatrixXd& m) {
  ViewBasis b;
  b.rows = static_cast<int>(m.rows());
  b.cols = static_cast<int>(m.cols());
  b.w.resize(static_cast<size_t>(b.rows) * b.cols);
  Eigen::Map<RowMajorD>(b.w.data(), b.rows, b.cols) = m;
  return b;
}

Eigen::MatrixXd ToEigen(const ViewBasis& b) {
  return Eigen::Map<const RowMajorD>(b.w.data(), b.rows, b.cols);
}

ViewBasis Identity(int k) { return FromEigen(Eigen::MatrixXd::Identity(k, k)); }

// The 2×2 rotation by `angle` into t at (i, j) × (i, j).
void PutRotation(Eigen::MatrixXd* t, int i, int j, double angle) {
  const double c = std::cos(angle), s = std::sin(angle);
  (*t)(i, i) = c;
  (*t)(i, j) = -s;
  (*t)(j, i) = s;
  (*t)(j, j) = c;
}

}  // namespace

double PortableLog(double x) {
  int e = 0;
  double m = std::frexp(x, &e);  // x = m · 2^e, m in [0.5, 1): exact
  if (m < 0.70710678118654752440) {
    m *= 2;
    --e;
  }
  const double t = (m - 1) / (m + 1);  // |t| <= 0.1716
  const double t2 = t * t;
  constexpr int kTerms = 16;  // t2^16/33 < 1e-26: far below half an ulp of the result
  double sum = 1.0 / (2 * kTerms + 1);
  for (int k = kTerms - 1; k >= 0; --k) sum = sum * t2 + 1.0 / (2 * k + 1);
  constexpr double kLn2Hi = 6.93147180369123816490e-01;  // fdlibm's split of ln 2
  constexpr double kLn2Lo = 1.90821492927058770002e-10;
  return e * kLn2Hi + (e * kLn2Lo + 2 * t * sum);
}

std::vector<double> RotationNormals(uint64_t seed, size_t count) {
  Rng rng(seed, kRotationDomain, 0);
  auto uniform = [&rng] {
    const double u = static_cast<double>(rng.Next() >> 11) * 0x1.0p-53;
    return 2 * u - 1;
  };
  std::vector<double> out;
  out.reserve(count + 1);
  while (out.size() < count) {
    const double u = uniform(), v = uniform();
    const double s = u * u + v * v;
    if (s == 0 || s >= 1) continue;
    const double f = std::sqrt(-2 * PortableLog(s) / s);
    out.push_back(u * f);
    out.push_back(v * f);
  }
  out.resize(count);
  return out;
}

ViewBasis RandomRotation(int k, uint64_t seed) {
  const std::vector<double> normals = RotationNormals(seed, static_cast<size_t>(k) * k);
  const Eigen::MatrixXd g = Eigen::Map<const RowMajorD>(normals.data(), k, k);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  Eigen::MatrixXd q = qr.householderQ();
  const Eigen::MatrixXd r = qr.matrixQR().triangularView<Eigen::Upper>();
  for (int i = 0; i < k; ++i)
    if (r(i, i) < 0) q.col(i) = -q.col(i);
  if (q.determinant() < 0) q.col(0) = -q.col(0);
  return FromEigen(q);
}

StatusOr<ViewBasis> PartialRotation(const ViewBasis& r, double alpha) {
  if (alpha == 0) return Identity(r.rows);
  if (alpha == 1) return r;
  const int k = r.rows;
  Eigen::RealSchur<Eigen::MatrixXd> schur(ToEigen(r));
  if (schur.info() != Eigen::Success) return Internal("partial rotation: no Schur form");
  const Eigen::MatrixXd& t = schur.matrixT();
  Eigen::MatrixXd ta = Eigen::MatrixXd::Identity(k, k);
  std::vector<int> half_turns;  // 1×1 blocks of -1, paired below
  for (int i = 0; i < k;) {
    if (i + 1 < k && t(i + 1, i) != 0) {
      const double angle =
          std::atan2((t(i + 1, i) - t(i, i + 1)) / 2, (t(i, i) + t(i + 1, i + 1)) / 2);
      PutRotation(&ta, i, i + 1, alpha * angle);
      i += 2;
      continue;
    }
    if (std::abs(std::abs(t(i, i)) - 1) > 1e-6)
      return Internal("partial rotation: Schur block " + std::to_string(t(i, i)) +
                      " is not ±1 (the matrix is not orthogonal)");
    if (t(i, i) < 0) half_turns.push_back(i);
    ++i;
  }
  if (half_turns.size() % 2 != 0)
    return Internal("partial rotation: an odd number of -1 eigenvalues (determinant -1)");
  for (size_t p = 0; p + 1 < half_turns.size(); p += 2)
    PutRotation(&ta, half_turns[p], half_turns[p + 1], alpha * M_PI);
  const Eigen::MatrixXd& u = schur.matrixU();
  return FromEigen(u * ta * u.transpose());
}

StatusOr<ViewBasis> ViewBasisFor(const ViewConfig& view, double alpha, int units) {
  if (view.basis == "file") {
    ND_ASSIGN_OR_RETURN(NpyMatrix m, ReadNpyMatrix(view.path));
    if (m.cols != units)
      return InvalidArgument(view.path + ": " + std::to_string(m.cols) + " columns, " + view.layer +
                             " has " + std::to_string(units) + " units");
    ViewBasis b;
    b.rows = static_cast<int>(m.rows);
    b.cols = static_cast<int>(m.cols);
    b.w = std::move(m.values);
    for (double v : b.w)
      if (!std::isfinite(v)) return InvalidArgument(view.path + ": holds a NaN or infinite value");
    return b;
  }
  return PartialRotation(RandomRotation(units, static_cast<uint64_t>(view.seed)), alpha);
}

Status ApplyViewBasis(const ViewBasis& w, const ActivationMap& in, ActivationMap* out) {
  if (in.units != w.cols)
    return InvalidArgument("view: the layer has " + std::to_string(in.units) +
                           " units, the basis " + std::to_string(w.cols) + " columns");
  const Eigen::Index plane = static_cast<Eigen::Index>(in.plane());
  out->units = w.rows;
  out->h = in.h;
  out->w = in.w;
  out->data.resize(static_cast<size_t>(w.rows) * in.plane());
  Eigen::Map<const RowMajorD> basis(w.w.data(), w.rows, w.cols);
  Eigen::Map<const RowMajorF> a(in.data.data(), in.units, plane);
  Eigen::Map<RowMajorF>(out->data.data(), w.rows, plane) = (basis * a.cast<double>()).cast<float>();
  return Status::Ok();
}

Status LinearView::Apply(const ActivationMap& in, ActivationMap* out) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!built_) {
      built_ = true;
      auto basis = ViewBasisFor(view_, alpha_, in.units);
      if (basis.ok())
        basis_ = std::move(*basis);
      else
        error_ = basis.status();
    }
    if (!error_.ok()) return error_;
  }
  return ApplyViewBasis(basis_, in, out);
}

const ViewBasis* LinearView::basis() const {
  std::lock_guard<std::mutex> lock(mu_);
  return built_ && error_.ok() ? &basis_ : nullptr;
}

}  // namespace nd
