// Views (common/maths/view_basis.h, common/base/npy.h, the [[view]] tables of the config): the
// portable random numbers against a stored checksum and an independent Python reference
// (tests/fixtures/rotation_reference.py: Python integers and floats for the generator, NumPy's
// LAPACK QR and eigen decomposition for the rotation and R^alpha, not Eigen or Schur), the
// rotation's properties, the transform on a hand-computed example, the .npy reader on bytes
// written here by hand, and the configuration's [[view]] tables.
#include "common/maths/view_basis.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/base/config.h"
#include "common/base/digest.h"
#include "common/base/npy.h"
#include "tests/testing/e2e_support.h"
#include "tests/testing/files.h"
#include "tests/testing/status_assertions.h"

namespace nd {
namespace {

using nd::testing::TempDir;
using nd::testing::WriteText;

// SHA-256 of the first 4096 normals of seed 1 as little-endian doubles, as printed by
// `/usr/bin/python3 tests/fixtures/rotation_reference.py --seed 1 --k 4` (the Python reference).
constexpr char kSeed1NormalsSha256[] =
    "75211ee26aacdb81174c83d19d4e8f5592dffcfce6512559fb6c17eda60ceb5e";

std::string NormalsSha256(uint64_t seed, size_t count) {
  const std::vector<double> z = RotationNormals(seed, count);
  return Sha256Hex(std::string_view(reinterpret_cast<const char*>(z.data()), z.size() * 8));
}

double MaxAbsDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = a.size() == b.size() ? 0 : INFINITY;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// max |WᵀW − I| and the product itself.
double OrthogonalityError(const ViewBasis& w) {
  double worst = 0;
  for (int i = 0; i < w.cols; ++i)
    for (int j = 0; j < w.cols; ++j) {
      double dot = 0;
      for (int r = 0; r < w.rows; ++r) dot += w.w[r * w.cols + i] * w.w[r * w.cols + j];
      worst = std::max(worst, std::abs(dot - (i == j ? 1.0 : 0.0)));
    }
  return worst;
}

// Determinant by naive Gaussian elimination with partial pivoting (not Eigen's LU).
double Determinant(const ViewBasis& w) {
  const int n = w.rows;
  std::vector<double> a = w.w;
  double det = 1;
  for (int c = 0; c < n; ++c) {
    int p = c;
    for (int r = c + 1; r < n; ++r)
      if (std::abs(a[r * n + c]) > std::abs(a[p * n + c])) p = r;
    if (p != c) {
      for (int k = 0; k < n; ++k) std::swap(a[p * n + k], a[c * n + k]);
      det = -det;
    }
    det *= a[c * n + c];
    for (int r = c + 1; r < n; ++r) {
      const double f = a[r * n + c] / a[c * n + c];
      for (int k = c; k < n; ++k) a[r * n + k] -= f * a[c * n + k];
    }
  }
  return det;
}

ViewBasis Multiply(const ViewBasis& a, const ViewBasis& b) {
  ViewBasis c{a.rows, b.cols, std::vector<double>(static_cast<size_t>(a.rows) * b.cols, 0)};
  for (int i = 0; i < a.rows; ++i)
    for (int j = 0; j < b.cols; ++j)
      for (int k = 0; k < a.cols; ++k)
        c.w[i * b.cols + j] += a.w[i * a.cols + k] * b.w[k * b.cols + j];
  return c;
}

// The Python reference's output: "normals_sha256", "rotation", "partial" lines.
struct Reference {
  std::string normals_sha256;
  std::vector<double> rotation, partial;
};

Reference RunReference(uint64_t seed, int k, double alpha) {
  const nd_e2e::Result r =
      nd_e2e::Sh("/usr/bin/python3 " + std::string(ND_SOURCE_DIR) +
                 "/tests/fixtures/rotation_reference.py --seed " + std::to_string(seed) + " --k " +
                 std::to_string(k) + " --alpha " + std::to_string(alpha));
  EXPECT_EQ(r.code, 0) << r.output;
  Reference ref;
  std::istringstream in(r.output);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream cells(line);
    std::string what;
    cells >> what;
    if (what == "normals_sha256") cells >> ref.normals_sha256;
    std::vector<double>* into = what == "rotation"  ? &ref.rotation
                                : what == "partial" ? &ref.partial
                                                    : nullptr;
    double v;
    while (into && cells >> v) into->push_back(v);
  }
  return ref;
}

TEST(PortableLogTest, IsWithinFourUlpOfTheLibraryLogAcrossTheRange) {
  std::mt19937_64 gen(5);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    const double x = i < 100000 ? unit(gen) : std::ldexp(unit(gen) + 0.5, (i % 200) - 100);
    if (!(x > 0)) continue;
    const double got = PortableLog(x), want = std::log(x);
    const double ulp = std::abs(std::nextafter(want, INFINITY) - want);
    ASSERT_LE(std::abs(got - want), 4 * ulp) << "x = " << x;
    ++checked;
  }
  EXPECT_GT(checked, 199000);
  EXPECT_EQ(PortableLog(1.0), 0.0);
  EXPECT_EQ(PortableLog(0.5), -std::log(2.0));
}

TEST(RotationNormalsTest, MatchTheStoredChecksumAndThePythonReference) {
  EXPECT_EQ(NormalsSha256(1, 4096), kSeed1NormalsSha256);
  EXPECT_EQ(NormalsSha256(1, 4096), NormalsSha256(1, 4096)) << "deterministic";
  EXPECT_NE(NormalsSha256(2, 4096), kSeed1NormalsSha256) << "the seed matters";
  EXPECT_EQ(RunReference(9, 3, 0.5).normals_sha256, NormalsSha256(9, 4096));
  // A prefix of a longer draw is the shorter draw (pairs are never reordered).
  const std::vector<double> a = RotationNormals(4, 7), b = RotationNormals(4, 8);
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
  // Standard normal moments over 200,000 draws: mean 0 ± 0.01, variance 1 ± 0.02.
  const std::vector<double> z = RotationNormals(3, 200000);
  double sum = 0, sq = 0;
  for (double v : z) sum += v, sq += v * v;
  EXPECT_NEAR(sum / z.size(), 0.0, 0.01);
  EXPECT_NEAR(sq / z.size(), 1.0, 0.02);
}

TEST(RandomRotationTest, MatchesTheNumpyReferenceAndIsSpecialOrthogonal) {
  for (int k : {1, 2, 5, 6}) {
    const Reference ref = RunReference(7, k, 0.3);
    const ViewBasis r = RandomRotation(k, 7);
    ASSERT_EQ(r.rows, k);
    ASSERT_EQ(r.cols, k);
    EXPECT_LT(MaxAbsDiff(r.w, ref.rotation), 1e-12) << "k = " << k;
    EXPECT_LT(OrthogonalityError(r), 1e-13) << "k = " << k;
    EXPECT_NEAR(Determinant(r), 1.0, 1e-12) << "k = " << k;
  }
  const ViewBasis big = RandomRotation(96, 2);
  EXPECT_LT(OrthogonalityError(big), 1e-12);
  EXPECT_NEAR(Determinant(big), 1.0, 1e-10);
  EXPECT_EQ(RandomRotation(96, 2).w, big.w) << "deterministic";
  EXPECT_NE(RandomRotation(96, 3).w, big.w);
  // Haar: the entries of a large random rotation have mean 0 and variance 1/k.
  double sum = 0, sq = 0;
  for (double v : big.w) sum += v, sq += v * v;
  EXPECT_NEAR(sum / big.w.size(), 0.0, 0.01);
  EXPECT_NEAR(sq / big.w.size(), 1.0 / 96, 1e-12) << "rows of unit length";
}

TEST(PartialRotationTest, EndpointsAreExactHalvesComposeAndAlphaMatchesTheReference) {
  const ViewBasis r = RandomRotation(6, 7);
  ND_ASSERT_OK_AND_ASSIGN(ViewBasis zero, PartialRotation(r, 0));
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 6; ++j) EXPECT_EQ(zero.w[i * 6 + j], i == j ? 1.0 : 0.0);
  ND_ASSERT_OK_AND_ASSIGN(ViewBasis one, PartialRotation(r, 1));
  EXPECT_EQ(one.w, r.w);
  ND_ASSERT_OK_AND_ASSIGN(ViewBasis half, PartialRotation(r, 0.5));
  EXPECT_LT(MaxAbsDiff(Multiply(half, half).w, r.w), 1e-12) << "R^0.5 R^0.5 = R";
  EXPECT_LT(OrthogonalityError(half), 1e-12);
  EXPECT_NEAR(Determinant(half), 1.0, 1e-12);
  ND_ASSERT_OK_AND_ASSIGN(ViewBasis third, PartialRotation(r, 0.3));
  EXPECT_LT(MaxAbsDiff(third.w, RunReference(7, 6, 0.3).partial), 1e-10);
  // Odd size: one eigenvalue is +1 and stays.
  const ViewBasis odd = RandomRotation(5, 11);
  ND_ASSERT_OK_AND_ASSIGN(ViewBasis odd_third, PartialRotation(odd, 1.0 / 3));
  EXPECT_LT(MaxAbsDiff(Multiply(Multiply(odd_third, odd_third), odd_third).w, odd.w), 1e-12);
  // Not a rotation: a diagonal scaling is refused with a reason.
  ViewBasis scale{2, 2, {2, 0, 0, 1}};
  EXPECT_EQ(PartialRotation(scale, 0.5).status().code(), StatusCode::kInternal);
}

TEST(ApplyViewBasisTest, HandComputedValuesAndAnExactIdentity) {
  // Two units of 1×2 maps: a_0 = (1, 2), a_1 = (3, -1).
  ActivationMap a{2, 1, 2, {1, 2, 3, -1}};
  // Directions: v_0 = 2 a_0 − a_1, v_1 = 0.5 a_1, v_2 = a_0 + a_1.
  ViewBasis w{3, 2, {2, -1, 0, 0.5, 1, 1}};
  ActivationMap v;
  ND_ASSERT_OK(ApplyViewBasis(w, a, &v));
  EXPECT_EQ(v.units, 3);
  EXPECT_EQ(v.h, 1);
  EXPECT_EQ(v.w, 2);
  EXPECT_EQ(v.data, (std::vector<float>{-1, 5, 1.5f, -0.5f, 4, 1}));
  // W = I reproduces every value bit for bit, whatever the values.
  std::mt19937 gen(3);
  std::normal_distribution<float> n(0, 10);
  ActivationMap big{7, 3, 5, std::vector<float>(7 * 15)};
  for (float& x : big.data) x = n(gen);
  ViewBasis eye{7, 7, std::vector<double>(49, 0)};
  for (int i = 0; i < 7; ++i) eye.w[i * 8] = 1;
  ND_ASSERT_OK(ApplyViewBasis(eye, big, &v));
  EXPECT_EQ(0, std::memcmp(v.data.data(), big.data.data(), big.data.size() * 4));
  // The wrong number of columns is refused.
  EXPECT_EQ(ApplyViewBasis(w, big, &v).code(), StatusCode::kInvalidArgument);
}

// A version 1.0 .npy file: magic, version, header length, header padded to 64 bytes, data.
std::string NpyBytes(const std::string& dict, const std::string& data) {
  std::string header = dict;
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

template <typename T>
std::string Bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

TEST(NpyTest, ReadsFloat32AndFloat64AndNamesTheFileInEveryError) {
  TempDir dir("npy");
  const std::string f32 = dir.path() + "/w32.npy";
  WriteText(f32, NpyBytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                          Bytes(std::vector<float>{1, 2, 3, 4.5f, -5, 6})));
  ND_ASSERT_OK_AND_ASSIGN(NpyMatrix m, ReadNpyMatrix(f32));
  EXPECT_EQ(m.rows, 2);
  EXPECT_EQ(m.cols, 3);
  EXPECT_EQ(m.dtype, "float32");
  EXPECT_EQ(m.values, (std::vector<double>{1, 2, 3, 4.5, -5, 6}));

  const std::string f64 = dir.path() + "/w64.npy";
  ND_ASSERT_OK(WriteNpyMatrix(f64, NpyMatrix{1, 2, {0.1, -2.5}, "float64"}));
  ND_ASSERT_OK_AND_ASSIGN(NpyMatrix back, ReadNpyMatrix(f64));
  EXPECT_EQ(back.values, (std::vector<double>{0.1, -2.5}));
  EXPECT_EQ(back.dtype, "float64");

  struct Bad {
    std::string dict, data, message;
  } bad[] = {
      {"{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1), }",
       Bytes(std::vector<int64_t>{1}), "'<i8' is not float32 or float64"},
      {"{'descr': '<f8', 'fortran_order': True, 'shape': (1, 1), }", Bytes(std::vector<double>{1}),
       "fortran_order True"},
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }",
       Bytes(std::vector<double>{1, 2, 3}), "shape (3,) is not 2-D"},
      {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", Bytes(std::vector<double>{1}),
       "8 bytes of data, 32 expected"},
  };
  for (const Bad& b : bad) {
    const std::string path = dir.path() + "/bad.npy";
    WriteText(path, NpyBytes(b.dict, b.data));
    auto got = ReadNpyMatrix(path);
    ASSERT_FALSE(got.ok()) << b.message;
    EXPECT_NE(got.status().message().find(path), std::string::npos) << got.status().message();
    EXPECT_NE(got.status().message().find(b.message), std::string::npos) << got.status().message();
  }
  WriteText(dir.path() + "/text.npy", "hello");
  EXPECT_NE(ReadNpyMatrix(dir.path() + "/text.npy").status().message().find("not a .npy file"),
            std::string::npos);
  EXPECT_EQ(ReadNpyMatrix(dir.path() + "/absent.npy").status().code(), StatusCode::kNotFound);
}

TEST(ViewBasisForTest, FileColumnsMustMatchTheLayer) {
  TempDir dir("viewfile");
  const std::string path = dir.path() + "/w.npy";
  ND_ASSERT_OK(WriteNpyMatrix(path, NpyMatrix{2, 3, {1, 0, 0, 0, 1, 0}, "float64"}));
  ViewConfig view;
  view.name = "probe";
  view.layer = "layer4";
  view.basis = "file";
  view.path = path;
  ND_ASSERT_OK_AND_ASSIGN(ViewBasis w, ViewBasisFor(view, 1, 3));
  EXPECT_EQ(w.rows, 2);
  auto wrong = ViewBasisFor(view, 1, 4);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().message(), path + ": 3 columns, layer4 has 4 units");
}

// ---- the [[view]] tables of pipeline.toml ----

std::string BaseConfig() {
  return "[dataset]\npath = \"/d\"\n[model]\npath = \"/m.pt\"\nlayers = [\"layer3\", "
         "\"layer4\"]\n[cache]\ndir = \"/c\"\n[output]\ndir = \"/o\"\n";
}

TEST(ViewConfigTest, TablesLoadRoundTripAndNameTheirResults) {
  TempDir dir("viewcfg");
  const std::string path = dir.path() + "/p.toml";
  WriteText(path, BaseConfig() +
                      "[[view]]\nname = \"rot\"\nlayer = \"layer4\"\nbasis = \"rotation\"\n"
                      "seed = 3\nalpha = [0, 0.25, 1]\n"
                      "[[view]]\nname = \"pca\"\nlayer = \"layer3\"\nbasis = \"file\"\n"
                      "path = \"W.npy\"\n");
  ND_ASSERT_OK_AND_ASSIGN(PipelineConfig c, LoadConfig(path));
  ASSERT_EQ(c.views.size(), 2u);
  EXPECT_EQ(c.views[0].seed, 3);
  EXPECT_EQ(c.views[0].alpha, (std::vector<double>{0, 0.25, 1}));
  EXPECT_EQ(c.views[1].path, dir.path() + "/W.npy") << "relative to the file";
  EXPECT_EQ(ResultSetNames(c),
            (std::vector<std::string>{"layer3", "layer4", "rot-a0", "rot-a0.25", "rot-a1", "pca"}));
  // The run's config.toml (ConfigToToml) loads back to the same views.
  const std::string again = dir.path() + "/again.toml";
  WriteText(again, ConfigToToml(c));
  ND_ASSERT_OK_AND_ASSIGN(PipelineConfig d, LoadConfig(again));
  ASSERT_EQ(d.views.size(), 2u);
  EXPECT_EQ(d.views[0].alpha, c.views[0].alpha);
  EXPECT_EQ(d.views[0].seed, 3);
  EXPECT_EQ(d.views[1].path, c.views[1].path);
  EXPECT_EQ(ResultSetNames(d), ResultSetNames(c));
}

TEST(ViewConfigTest, BadTablesGetOneLineNamingTheTableAndKey) {
  TempDir dir("viewbad");
  const std::string view = "[[view]]\nname = \"v\"\nlayer = \"layer4\"\nbasis = \"rotation\"\n";
  struct Case {
    std::string extra, message;
  } cases[] = {
      {view + "colour = 1\n", "p.toml: [[view]] #1 .colour: unknown key; keys of [[view]] are"},
      {view + "alpha = 2\n", "p.toml: [[view]] #1 .alpha: must be in [0, 1], got 2"},
      {view + "alpha = [0.5, 0.5]\n", "p.toml: [[view]] #1 .alpha: 0.5 is listed twice"},
      {"[[view]]\nname = \"v\"\nlayer = \"conv9\"\nbasis = \"rotation\"\n",
       "p.toml: [[view]] #1 .layer: \"conv9\" is not one of model.layers"},
      {"[[view]]\nname = \"v\"\nlayer = \"layer4\"\nbasis = \"pca\"\n",
       "p.toml: [[view]] #1 .basis: \"pca\" is not one of \"rotation\", \"file\""},
      {"[[view]]\nname = \"v\"\nlayer = \"layer4\"\nbasis = \"file\"\n",
       "p.toml: [[view]] #1 .path: required with basis = \"file\""},
      {"[[view]]\nname = \"layer3\"\nlayer = \"layer4\"\nbasis = \"rotation\"\n",
       "p.toml: [[view]] #1 .name: results \"layer3\" would share a folder"},
      {"[[view]]\nname = \"a/b\"\nlayer = \"layer4\"\nbasis = \"rotation\"\n",
       "p.toml: [[view]] #1 .name: \"a/b\" must be one folder name"},
      {view + view, "p.toml: [[view]] #2 .name: results \"v\" would share a folder"},
      {"[[view]]\nlayer = \"layer4\"\nbasis = \"rotation\"\n",
       "p.toml: [[view]] #1 .name: required"},
      {"[view]\nname = \"v\"\n", "expected an array of tables"},
  };
  for (const Case& k : cases) {
    const std::string path = dir.path() + "/p.toml";
    WriteText(path, BaseConfig() + k.extra);
    auto c = LoadConfig(path);
    ASSERT_FALSE(c.ok()) << k.extra;
    EXPECT_NE(c.status().message().find(k.message), std::string::npos)
        << c.status().message() << "\nwanted: " << k.message;
    EXPECT_EQ(c.status().message().find('\n'), std::string::npos) << "one line";
  }
}

}  // namespace
}  // namespace nd
