// Test helpers of the score stage: a naive brute-force reference of SPEC.md §2 steps 3-8 (written
// from the SPEC text, sharing nothing with stages/score/ but the reference upsampler), random
// label/activation generators, and a writer of small Broden directories (CSV + PNG layers).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "common/base/activation_map.h"
#include "common/broden/broden_dataset.h"
#include "common/maths/iou_tally.h"
#include "common/maths/upsample.h"
#include "tests/testing/files.h"

namespace nd {
namespace testing_score {

// ---------------------------------------------------------------------------------------------
// Brute-force reference.

struct RefCounts {
  std::map<int, int64_t> g;                  // label -> G
  std::map<std::pair<int, int>, int64_t> i;  // (unit, label) -> I
  std::map<std::pair<int, int>, int64_t> u;  // (unit, category) -> U
};

// Adds one image, per pixel, exactly as SPEC.md §2 words it. M[p] = max A > T and up[p] > T.
inline void RefAddImage(const ImageLabels& lab, const ActivationMap& acts,
                        const std::vector<double>& thresholds, const std::vector<int>& primary,
                        UnionRule rule, RefCounts* ref) {
  auto valid = [&](int l) { return l != 0 && primary[l] >= 0; };
  const int n = lab.sh * lab.sw;
  for (const auto& layer : lab.layers) {
    for (int p = 0; p < n; ++p) {
      if (valid(layer[p])) ref->g[layer[p]] += 1;
    }
  }
  for (int s : lab.scalar_labels) {
    if (valid(s)) ref->g[s] += n;
  }
  std::vector<float> up(n);
  for (int u = 0; u < acts.units; ++u) {
    UpsampleBilinear(acts.unit(u), acts.h, acts.w, lab.sh, lab.sw, up.data());
    double mx = -std::numeric_limits<double>::infinity();
    for (size_t k = 0; k < acts.plane(); ++k) mx = std::max(mx, double(acts.unit(u)[k]));
    std::vector<bool> mask(n);
    int64_t m = 0;
    for (int p = 0; p < n; ++p) {
      mask[p] = mx > thresholds[u] && double(up[p]) > thresholds[u];
      m += mask[p];
    }
    for (int p = 0; p < n; ++p) {
      if (!mask[p]) continue;
      for (const auto& layer : lab.layers) {
        if (valid(layer[p])) ref->i[{u, layer[p]}] += 1;
      }
    }
    for (int s : lab.scalar_labels) {
      if (valid(s)) ref->i[{u, s}] += m;
    }
    std::set<int> cats;
    for (int s : lab.scalar_labels) {
      if (valid(s)) cats.insert(primary[s]);
    }
    for (const auto& layer : lab.layers) {
      for (int p = 0; p < n; ++p) {
        if (!valid(layer[p])) continue;
        if (rule == UnionRule::kPaper || mask[p]) cats.insert(primary[layer[p]]);
      }
    }
    for (int c : cats) ref->u[{u, c}] += m;
  }
}

inline int64_t Get(const std::map<int, int64_t>& m, int k) {
  auto it = m.find(k);
  return it == m.end() ? 0 : it->second;
}
inline int64_t Get(const std::map<std::pair<int, int>, int64_t>& m, int a, int b) {
  auto it = m.find({a, b});
  return it == m.end() ? 0 : it->second;
}

// Reference results from reference counts, naively.
struct RefResults {
  std::vector<std::vector<double>> iou;  // [u][l]
  std::vector<std::vector<int>> best;    // [u][c]
  std::vector<std::vector<double>> best_iou;
  std::vector<int> label, category;  // per unit
  std::vector<double> unit_iou;
  std::vector<std::vector<std::tuple<double, int, int>>> top;  // (iou, category, label)
  int detectors = 0, unique_paper = 0, unique_top = 0;
};

inline RefResults RefCompute(const RefCounts& ref, int units, int num_labels, int num_cats,
                             const std::vector<int>& primary, double cutoff) {
  RefResults r;
  r.iou.assign(units, std::vector<double>(num_labels, 0.0));
  r.best.assign(units, std::vector<int>(num_cats, -1));
  r.best_iou.assign(units, std::vector<double>(num_cats, 0.0));
  r.label.assign(units, -1);
  r.category.assign(units, -1);
  r.unit_iou.assign(units, 0.0);
  r.top.resize(units);
  for (int u = 0; u < units; ++u) {
    for (int l = 1; l < num_labels; ++l) {
      if (primary[l] < 0) continue;
      const int64_t i = Get(ref.i, u, l);
      const int64_t den = Get(ref.u, u, primary[l]) + Get(ref.g, l) - i;
      r.iou[u][l] = den == 0 ? 0.0 : double(i) / double(den);
    }
    for (int c = 0; c < num_cats; ++c) {
      for (int l = 1; l < num_labels; ++l) {
        if (primary[l] != c) continue;
        if (r.best[u][c] == -1 || r.iou[u][l] > r.best_iou[u][c]) {
          r.best[u][c] = l;
          r.best_iou[u][c] = r.iou[u][l];
        }
      }
    }
    for (int c = 0; c < num_cats; ++c) {
      if (r.best[u][c] == -1) continue;
      if (r.category[u] == -1 || r.best_iou[u][c] > r.unit_iou[u]) {
        r.category[u] = c;
        r.label[u] = r.best[u][c];
        r.unit_iou[u] = r.best_iou[u][c];
      }
    }
    std::vector<std::tuple<double, int, int>> all;
    for (int l = 1; l < num_labels; ++l) {
      if (primary[l] >= 0 && r.iou[u][l] > 0) all.emplace_back(-r.iou[u][l], primary[l], l);
    }
    std::sort(all.begin(), all.end());
    for (size_t k = 0; k < all.size() && k < 3; ++k) {
      r.top[u].emplace_back(-std::get<0>(all[k]), std::get<1>(all[k]), std::get<2>(all[k]));
    }
  }
  std::set<int> tops;
  for (int u = 0; u < units; ++u) {
    if (r.label[u] >= 0 && r.unit_iou[u] > cutoff) {
      ++r.detectors;
      tops.insert(r.label[u]);
    }
  }
  r.unique_top = static_cast<int>(tops.size());
  for (int c = 0; c < num_cats; ++c) {
    std::set<int> s;
    for (int u = 0; u < units; ++u) {
      if (r.best[u][c] >= 0 && r.best_iou[u][c] > cutoff) s.insert(r.best[u][c]);
    }
    r.unique_paper += static_cast<int>(s.size());
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Random data.

// Random activations: values from a few distributions, including repeated levels (ties with
// thresholds drawn from the same levels).
inline ActivationMap RandomActivations(std::mt19937* rng, int units, int h, int w) {
  ActivationMap a;
  a.units = units;
  a.h = h;
  a.w = w;
  a.data.resize(static_cast<size_t>(units) * h * w);
  std::normal_distribution<float> normal(0, 1);
  std::uniform_int_distribution<int> level(0, 3), kind(0, 2);
  for (int u = 0; u < units; ++u) {
    const int k = kind(*rng);
    float* d = a.unit(u);
    for (size_t i = 0; i < a.plane(); ++i) {
      if (k == 0) d[i] = normal(*rng);
      if (k == 1) d[i] = static_cast<float>(level(*rng));
      if (k == 2) d[i] = std::max(0.0f, normal(*rng));
    }
  }
  return a;
}

// Random labels: `layers` layers of random labels (about 40% unlabelled) and 0..2 scalars.
inline ImageLabels RandomLabels(std::mt19937* rng, int sh, int sw, int num_labels, int layers,
                                int num_cats) {
  ImageLabels lab;
  lab.sh = sh;
  lab.sw = sw;
  std::uniform_int_distribution<int> label(1, num_labels - 1), coin(0, 9), cat(0, num_cats - 1),
      nscalar(0, 2);
  // Labels of a layer come from a small random palette so that regions repeat.
  for (int k = 0; k < layers; ++k) {
    std::vector<int> palette = {label(*rng), label(*rng), label(*rng)};
    std::vector<uint16_t> layer(static_cast<size_t>(sh) * sw);
    for (auto& v : layer) v = coin(*rng) < 4 ? 0 : palette[coin(*rng) % 3];
    lab.layers.push_back(std::move(layer));
    lab.layer_category.push_back(cat(*rng));
  }
  const int ns = nscalar(*rng);
  for (int k = 0; k < ns; ++k) {
    lab.scalar_labels.push_back(label(*rng));
    lab.scalar_category.push_back(cat(*rng));
  }
  return lab;
}

// ---------------------------------------------------------------------------------------------
// Broden directories on disk.

struct TestBroden {
  std::vector<std::string> categories;        // category.csv order
  std::vector<std::string> label_names;       // by number; [0] unused
  std::vector<std::vector<double>> coverage;  // [label][category], < 0 = no c_<cat>.csv row
  struct Image {
    int sh = 0, sw = 0;
    std::vector<std::vector<std::vector<uint16_t>>> layers;  // [category][k] sh*sw labels
    std::vector<std::vector<int>> scalars;                   // [category]
  };
  std::vector<Image> images;
};

using ::nd::testing::MakeTempDir;
using ::nd::testing::WriteText;

inline std::string CsvQuote(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

// Writes `b` under `dir` (which must exist). Returns false when a PNG cannot be written.
inline bool WriteTestBroden(const TestBroden& b, const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(dir) / "images");
  std::string cat_csv = "name,first,last,count,frequency\r\n";
  for (const auto& c : b.categories) cat_csv += c + ",1,1,1,1\r\n";
  WriteText(dir + "/category.csv", cat_csv);
  std::string label_csv = "number,name,category,frequency,coverage,syns\r\n";
  for (size_t l = 1; l < b.label_names.size(); ++l) {
    label_csv += std::to_string(l) + "," + CsvQuote(b.label_names[l]) + "," + b.categories[0] +
                 "(1),1,1.0,\r\n";
  }
  WriteText(dir + "/label.csv", label_csv);
  for (size_t c = 0; c < b.categories.size(); ++c) {
    std::string t = "code,number,name,frequency,coverage\r\n";
    int code = 1;
    for (size_t l = 1; l < b.label_names.size(); ++l) {
      if (b.coverage[l][c] < 0) continue;
      t += std::to_string(code++) + "," + std::to_string(l) + "," + CsvQuote(b.label_names[l]) +
           ",1," + std::to_string(b.coverage[l][c]) + "\r\n";
    }
    WriteText(dir + "/c_" + b.categories[c] + ".csv", t);
  }
  std::string index = "image,split,ih,iw,sh,sw";
  for (const auto& c : b.categories) index += "," + c;
  index += "\r\n";
  for (size_t i = 0; i < b.images.size(); ++i) {
    const auto& im = b.images[i];
    index += "img" + std::to_string(i) + ".jpg,train," + std::to_string(2 * im.sh) + "," +
             std::to_string(2 * im.sw) + "," + std::to_string(im.sh) + "," + std::to_string(im.sw);
    for (size_t c = 0; c < b.categories.size(); ++c) {
      std::vector<std::string> items;
      if (c < im.layers.size()) {
        for (size_t k = 0; k < im.layers[c].size(); ++k) {
          const std::string name =
              "img" + std::to_string(i) + "_" + b.categories[c] + "_" + std::to_string(k) + ".png";
          cv::Mat png(im.sh, im.sw, CV_8UC3);
          for (int y = 0; y < im.sh; ++y) {
            for (int x = 0; x < im.sw; ++x) {
              const int v = im.layers[c][k][y * im.sw + x];
              png.at<cv::Vec3b>(y, x) = cv::Vec3b(0, static_cast<uint8_t>(v >> 8),
                                                  static_cast<uint8_t>(v & 255));  // B, G, R
            }
          }
          if (!cv::imwrite(dir + "/images/" + name, png)) return false;
          items.push_back(name);
        }
      }
      if (c < im.scalars.size()) {
        for (int s : im.scalars[c]) items.push_back(std::to_string(s));
      }
      std::string cell;
      for (size_t k = 0; k < items.size(); ++k) cell += (k ? ";" : "") + items[k];
      index += "," + cell;
    }
    index += "\r\n";
  }
  WriteText(dir + "/index.csv", index);
  return true;
}

// `n` images (img<i>.jpg; the caller writes the photos) with 4x4 segmentations, each with the
// one scene label beach-s: the least a Broden dataset needs, for tests of decoding.
inline TestBroden SceneOnlyBroden(int n) {
  TestBroden b;
  b.categories = {"scene"};
  b.label_names = {"", "beach-s"};
  b.coverage = {{-1}, {1}};
  TestBroden::Image im;
  im.sh = im.sw = 4;
  im.scalars = {{1}};
  b.images.assign(static_cast<size_t>(n), im);
  return b;
}

}  // namespace testing_score
}  // namespace nd
