#include "stages/score/tensor_scorer.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <utility>

#include "common/maths/upsample.h"
#include "common/torch/torch_status.h"

namespace nd {
namespace {

// Largest grid whose per-image 0/1 matmul sums are exact in float32 (see the header, step 3).
constexpr int64_t kMaxExactPixels = int64_t{1} << 24;

// Runs fn() (returning Status) and turns a LibTorch exception into Internal("<what>: <reason>").
template <typename Fn>
Status Guard(const std::string& what, Fn&& fn) {
  return GuardTorch(what, std::forward<Fn>(fn));
}

StatusOr<torch::Device> ParseDevice(const std::string& spec) {
  return ParseTorchDevice(spec, /*allow_auto=*/false, "score device '" + spec + "'",
                          "set score.device = \"cpu\"");
}

// A host buffer copied to `device` (always a copy, also on the CPU, so the host buffer may be
// reused afterwards).
torch::Tensor Upload(const void* data, at::IntArrayRef sizes, torch::ScalarType type,
                     const torch::Device& device) {
  torch::Tensor host =
      torch::from_blob(const_cast<void*>(data), sizes, torch::TensorOptions().dtype(type));
  return host.to(device, type, /*non_blocking=*/false, /*copy=*/true);
}

// The axis tables of ComputeAxisSampling() on the device, shaped for broadcasting.
struct Tables {
  int h = 0, w = 0, sh = 0, sw = 0;
  torch::Tensor y0, y1, hy0, hy1;  // int64 [sh]; float32 [sh, 1]
  torch::Tensor x0, x1, wx0, wx1;  // int64 [sw]; float32 [sw]
};

Tables MakeTables(int h, int w, int sh, int sw, const torch::Device& device) {
  Tables t;
  t.h = h;
  t.w = w;
  t.sh = sh;
  t.sw = sw;
  const AxisSampling rows = ComputeAxisSampling(h, sh);
  const AxisSampling cols = ComputeAxisSampling(w, sw);
  auto indices = [&](const std::vector<int32_t>& v) {
    std::vector<int64_t> wide(v.begin(), v.end());
    return Upload(wide.data(), {static_cast<int64_t>(wide.size())}, torch::kLong, device);
  };
  auto weights = [&](const std::vector<float>& v, std::vector<int64_t> sizes) {
    return Upload(v.data(), sizes, torch::kFloat, device);
  };
  t.y0 = indices(rows.i0);
  t.y1 = indices(rows.i1);
  t.hy0 = weights(rows.l0, {sh, 1});
  t.hy1 = weights(rows.l1, {sh, 1});
  t.x0 = indices(cols.i0);
  t.x1 = indices(cols.i1);
  t.wx0 = weights(cols.l0, {sw});
  t.wx1 = weights(cols.l1, {sw});
  return t;
}

// up[..., y, x] for A = [..., h, w] float32: the arithmetic of upsample.h, one tensor op per
// IEEE operation (see tensor_scorer.h, step 1).
torch::Tensor Upsample(const torch::Tensor& a, const Tables& t) {
  const int64_t x = a.dim() - 1;
  torch::Tensor row;
  {
    torch::Tensor left = a.index_select(x, t.x0).mul(t.wx0);   // wx0 * A[r][x0]
    torch::Tensor right = a.index_select(x, t.x1).mul(t.wx1);  // wx1 * A[r][x1]
    row = left.add(right);                                     // [..., h, sw]
  }
  torch::Tensor top = row.index_select(x - 1, t.y0).mul(t.hy0);  // hy0 * top
  torch::Tensor bot = row.index_select(x - 1, t.y1).mul(t.hy1);  // hy1 * bot
  row = torch::Tensor();
  return top.add(bot);  // [..., sh, sw]
}

}  // namespace

Status CheckTensorDevice(const std::string& device) { return ParseDevice(device).status(); }

struct TensorScorer::Impl {
  torch::Device device{torch::kCPU};
  std::string device_name;
  int units = 0, num_labels = 0, num_categories = 0;
  UnionRule rule = UnionRule::kPaper;
  TensorScorerOptions options;
  std::vector<double> thresholds;
  torch::Tensor tf;  // float32 [units]: ThresholdAsFloat(T_u)

  // Accumulators (int64, on the device). Column num_labels / num_categories is a dump for padding.
  torch::Tensor acc_i, acc_u;
  std::vector<int64_t> g;  // on the host
  int64_t images = 0, maps = 0, skipped_max = 0;

  // The queue: images of one geometry.
  struct Image {
    std::vector<uint8_t> columns;  // K*P 0/1 bytes: pixel sets (label targets, then categories)
    std::vector<int64_t> column_label;  // K targets in acc_i (num_labels = none)
    std::vector<int> scalar_labels;
    struct Union {
      int category;
      int column;  // index of the category's column, -1 = counts whenever |M| does
    };
    std::vector<Union> unions;
  };
  int qh = 0, qw = 0, qsh = 0, qsw = 0;
  std::vector<float> q_acts;  // B*units*h*w
  std::vector<Image> q_images;
  Tables tables;
  bool broken = false;

  Status Init() {
    return Guard("score (tensor, " + device_name + ")", [&]() -> Status {
      std::vector<float> tf_host;
      for (double t : thresholds) tf_host.push_back(ThresholdAsFloat(t));
      tf = Upload(tf_host.data(), {units}, torch::kFloat, device);
      const auto longs = torch::TensorOptions().dtype(torch::kLong).device(device);
      acc_i = torch::zeros({units, num_labels + 1}, longs);
      acc_u = torch::zeros({units, num_categories + 1}, longs);
      g.assign(num_labels, 0);
      return Status::Ok();
    });
  }

  Status RunQueue();
  Status RunBatch();
};

TensorScorer::TensorScorer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TensorScorer::~TensorScorer() = default;

int TensorScorer::units() const { return impl_->units; }
const std::string& TensorScorer::device() const { return impl_->device_name; }

StatusOr<std::unique_ptr<TensorScorer>> TensorScorer::Create(const std::vector<double>& thresholds,
                                                             int num_labels, int num_categories,
                                                             UnionRule rule,
                                                             const TensorScorerOptions& options) {
  ND_ASSIGN_OR_RETURN(torch::Device device, ParseDevice(options.device));
  if (options.batch_images < 1) {
    return InvalidArgument("tensor scorer: batch_images is " +
                           std::to_string(options.batch_images) + ", expected >= 1");
  }
  if (options.chunk_bytes < 1) return InvalidArgument("tensor scorer: chunk_bytes must be >= 1");
  if (thresholds.empty()) return InvalidArgument("tensor scorer: no thresholds (zero units)");
  for (size_t u = 0; u < thresholds.size(); ++u) {
    if (std::isnan(thresholds[u])) {
      return InvalidArgument("tensor scorer: threshold of unit " + std::to_string(u) + " is NaN");
    }
  }
  if (num_labels < 0 || num_categories < 0) {
    return InvalidArgument("tensor scorer: negative number of labels or categories");
  }
  auto impl = std::make_unique<Impl>();
  impl->device = device;
  impl->device_name = options.device;
  impl->units = static_cast<int>(thresholds.size());
  impl->num_labels = num_labels;
  impl->num_categories = num_categories;
  impl->rule = rule;
  impl->options = options;
  impl->thresholds = thresholds;
  ND_RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<TensorScorer>(new TensorScorer(std::move(impl)));
}

Status TensorScorer::AddImage(const LabelIndex& labels, const ActivationMap& acts) {
  Impl& s = *impl_;
  if (s.broken) return Internal("tensor scorer: unusable after an earlier device error");
  // The checks of IouTally::AddImage, same order and meaning.
  ND_RETURN_IF_ERROR(CheckTallyInputs(labels, acts, s.units, s.num_labels, s.num_categories));
  const int64_t pixels = labels.pixels();
  if (pixels > kMaxExactPixels) {
    return InvalidArgument("segmentation grid " + std::to_string(labels.sh()) + "x" +
                           std::to_string(labels.sw()) +
                           " has more than 2^24 pixels; the tensor scorer's float32 counts "
                           "would not be exact");
  }
  ++s.images;
  const auto& pixel_labels = labels.pixel_labels();
  const auto& scalars = labels.scalar_labels();
  for (const auto& pl : pixel_labels) s.g[pl.label] += pl.set.count;
  for (int l : scalars) s.g[l] += pixels;
  if (pixel_labels.empty() && scalars.empty()) return Status::Ok();  // nothing can count
  s.maps += s.units;

  if (!s.q_images.empty() &&
      (acts.h != s.qh || acts.w != s.qw || labels.sh() != s.qsh || labels.sw() != s.qsw)) {
    ND_RETURN_IF_ERROR(s.RunQueue());
  }
  s.qh = acts.h;
  s.qw = acts.w;
  s.qsh = labels.sh();
  s.qsw = labels.sw();
  s.q_acts.insert(s.q_acts.end(), acts.data.begin(), acts.data.end());

  Impl::Image im;
  auto unpack = [&](const LabelIndex::PixelSet& set, int64_t label_target) {
    const size_t k = im.column_label.size();
    im.column_label.push_back(label_target);
    im.columns.resize((k + 1) * static_cast<size_t>(pixels), 0);
    uint8_t* col = im.columns.data() + k * static_cast<size_t>(pixels);
    const uint64_t* words = labels.SetWords(set);
    for (uint32_t wi = set.lo; wi < set.hi; ++wi) {
      uint64_t bits = words[wi - set.lo];
      while (bits != 0) {
        const int b = __builtin_ctzll(bits);
        bits &= bits - 1;
        col[static_cast<int64_t>(wi) * 64 + b] = 1;  // bits past the grid are zero (bits.h)
      }
    }
  };
  for (const auto& pl : pixel_labels) unpack(pl.set, pl.label);
  im.scalar_labels = scalars;
  const auto& category_sets = labels.category_sets();
  for (const auto& c : labels.categories()) {
    if (s.rule == UnionRule::kPaper || c.has_scalar) {
      im.unions.push_back({c.category, -1});
    } else if (c.set >= 0) {
      im.unions.push_back({c.category, static_cast<int>(im.column_label.size())});
      unpack(category_sets[c.set].set, s.num_labels);
    }
  }
  s.q_images.push_back(std::move(im));
  if (static_cast<int>(s.q_images.size()) >= s.options.batch_images) {
    ND_RETURN_IF_ERROR(s.RunQueue());
  }
  return Status::Ok();
}

Status TensorScorer::Impl::RunQueue() {
  if (q_images.empty()) return Status::Ok();
  Status st = Guard("score (tensor, " + device_name + ")", [&] { return RunBatch(); });
  q_images.clear();
  q_acts.clear();
  if (!st.ok()) broken = true;
  return st;
}

Status TensorScorer::Impl::RunBatch() {
  torch::NoGradGuard no_grad;
  const int64_t b = static_cast<int64_t>(q_images.size());
  const int64_t p = static_cast<int64_t>(qsh) * qsw;
  if (tables.h != qh || tables.w != qw || tables.sh != qsh || tables.sw != qsw) {
    tables = MakeTables(qh, qw, qsh, qsw, device);
  }
  const torch::Tensor acts = Upload(q_acts.data(), {b, units, qh, qw}, torch::kFloat, device);
  // The max gate, for every map of the batch: any(A > Tf) (max A > T with NaN ignored). Only the
  // maps that pass are upsampled; the others have empty masks and add nothing.
  const torch::Tensor gate = acts.gt(tf.view({1, units, 1, 1})).flatten(2).any(2).flatten();
  const torch::Tensor passed_dev = gate.nonzero().flatten().to(torch::kCPU).contiguous();
  const int64_t passed = passed_dev.numel();
  skipped_max += b * units - passed;
  if (passed == 0) return Status::Ok();
  const int64_t* pair = passed_dev.data_ptr<int64_t>();  // b * units + u, ascending

  // Columns [B, P, K + 1] float32 0/1: the image's pixel sets (label targets first, then the lite
  // rule's category sets), zero padding, and last an all-ones column whose count is |M|.
  int64_t k = 0;
  for (const Image& im : q_images) k = std::max<int64_t>(k, im.column_label.size());
  const int64_t kc = k + 1;
  std::vector<uint8_t> columns(static_cast<size_t>(b * kc * p), 0);
  std::vector<int64_t> column_label(static_cast<size_t>(b * kc), num_labels);
  for (int64_t i = 0; i < b; ++i) {
    const Image& im = q_images[i];
    std::memcpy(columns.data() + i * kc * p, im.columns.data(), im.columns.size());
    std::memset(columns.data() + (i * kc + k) * p, 1, static_cast<size_t>(p));
    std::copy(im.column_label.begin(), im.column_label.end(), column_label.begin() + i * kc);
  }
  const torch::Tensor cols =
      Upload(columns.data(), {b, kc, p}, torch::kByte, device).to(torch::kFloat).transpose(1, 2);
  columns = std::vector<uint8_t>();
  const torch::Tensor col_label = Upload(column_label.data(), {b, kc}, torch::kLong, device);
  const torch::Tensor flat_acts = acts.view({b * units, qh, qw});
  torch::Tensor flat_acc_i = acc_i.view({-1}), flat_acc_u = acc_u.view({-1});

  // Chunks of passed maps: ~25 bytes per map and output pixel (up to five float32 intermediates
  // of the upsampling, the bool and float masks).
  const int64_t per_map = 26 * p + 24 * static_cast<int64_t>(qh) * qsw + 1;
  const int64_t chunk =
      std::max<int64_t>(1, std::min<int64_t>(passed, options.chunk_bytes / per_map));
  std::vector<int64_t> units_h, images_h, s_pair, s_target, u_pair, u_index, u_target;
  for (int64_t j0 = 0; j0 < passed; j0 += chunk) {
    const int64_t n = std::min<int64_t>(chunk, passed - j0);
    // Host tables of the chunk: unit and image of each map; scalar entries (map, I target);
    // union entries (map, column of `hit`, U target).
    units_h.clear();
    images_h.clear();
    s_pair.clear();
    s_target.clear();
    u_pair.clear();
    u_index.clear();
    u_target.clear();
    for (int64_t j = 0; j < n; ++j) {
      const int64_t u = pair[j0 + j] % units, i = pair[j0 + j] / units;
      units_h.push_back(u);
      images_h.push_back(i);
      for (int l : q_images[i].scalar_labels) {
        s_pair.push_back(j);
        s_target.push_back(u * (num_labels + 1) + l);
      }
      for (const Image::Union& un : q_images[i].unions) {
        u_pair.push_back(j);
        u_index.push_back(j * kc + (un.column < 0 ? k : un.column));
        u_target.push_back(u * (num_categories + 1) + un.category);
      }
    }
    auto longs = [&](const std::vector<int64_t>& v) {
      return Upload(v.data(), {static_cast<int64_t>(v.size())}, torch::kLong, device);
    };
    const torch::Tensor ids = longs(std::vector<int64_t>(pair + j0, pair + j0 + n));
    const torch::Tensor unit_ids = longs(units_h), image_ids = longs(images_h);
    const torch::Tensor a = flat_acts.index_select(0, ids);  // [n, h, w]
    const torch::Tensor mask =                               // [n, P] float32 0/1
        Upsample(a, tables)
            .gt(tf.index_select(0, unit_ids).view({n, 1, 1}))
            .view({n, p})
            .to(torch::kFloat);
    // |M ∩ column| per map, by image (the maps of one image are consecutive): [n, K + 1].
    std::vector<torch::Tensor> parts;
    for (int64_t j = 0; j < n;) {
      int64_t e = j;
      while (e < n && images_h[e] == images_h[j]) ++e;
      parts.push_back(torch::mm(mask.narrow(0, j, e - j), cols[images_h[j]]));
      j = e;
    }
    const torch::Tensor counts = torch::cat(parts, 0).to(torch::kLong);  // exact integers
    const torch::Tensor m = counts.select(1, k);                         // |M|
    // I[u, label] += |M ∩ set| (padding and category columns go to the dump column).
    const torch::Tensor i_target =
        unit_ids.view({n, 1}).mul(num_labels + 1).add(col_label.index_select(0, image_ids));
    if (k > 0) {
      flat_acc_i.index_add_(0, i_target.narrow(1, 0, k).reshape({-1}),
                            counts.narrow(1, 0, k).reshape({-1}));
    }
    if (!s_pair.empty()) {
      flat_acc_i.index_add_(0, longs(s_target), m.index_select(0, longs(s_pair)));
    }
    if (!u_pair.empty()) {
      // U[u, c] += |M| when the category counts for this mask: always (paper, or a scalar label
      // of the category: the all-ones column, |M| > 0), or when M meets the category's set (lite).
      const torch::Tensor hit = counts.gt(0).to(torch::kLong).view({-1});
      flat_acc_u.index_add_(
          0, longs(u_target),
          m.index_select(0, longs(u_pair)).mul(hit.index_select(0, longs(u_index))));
    }
  }
  return Status::Ok();
}

Status TensorScorer::Flush() {
  if (impl_->broken) return Internal("tensor scorer: unusable after an earlier device error");
  return impl_->RunQueue();
}

Status TensorScorer::AddCountsTo(IouTally* tally) {
  Impl& s = *impl_;
  ND_RETURN_IF_ERROR(Flush());
  if (tally->units() != s.units || tally->num_labels() != s.num_labels ||
      tally->num_categories() != s.num_categories || tally->rule() != s.rule) {
    return InvalidArgument("tensor scorer: the tally's shape or union rule differs");
  }
  std::vector<int64_t> i_host, u_host;
  Status st = Guard("score (tensor, " + s.device_name + ")", [&]() -> Status {
    auto fetch = [](const torch::Tensor& acc, int64_t cols, std::vector<int64_t>* out) {
      const torch::Tensor h = acc.narrow(1, 0, cols).to(torch::kCPU).contiguous();
      out->assign(h.data_ptr<int64_t>(), h.data_ptr<int64_t>() + h.numel());
    };
    fetch(s.acc_i, s.num_labels, &i_host);
    fetch(s.acc_u, s.num_categories, &u_host);
    return Status::Ok();
  });
  if (!st.ok()) {
    s.broken = true;
    return st;
  }
  ND_RETURN_IF_ERROR(tally->AddCounts(s.images, s.g, i_host, u_host));
  return Guard("score (tensor, " + s.device_name + ")", [&]() -> Status {
    s.acc_i.zero_();
    s.acc_u.zero_();
    s.g.assign(s.num_labels, 0);
    s.images = 0;
    return Status::Ok();
  });
}

StatusOr<MaskStats> TensorScorer::TakeMaskStats() {
  Impl& s = *impl_;
  ND_RETURN_IF_ERROR(Flush());
  MaskStats stats;
  stats.maps = s.maps;
  stats.maps_skipped_max = s.skipped_max;
  s.maps = s.skipped_max = 0;
  return stats;
}

StatusOr<std::vector<float>> TensorUpsample(const std::string& device, const ActivationMap& acts,
                                            int sh, int sw) {
  ND_ASSIGN_OR_RETURN(torch::Device dev, ParseDevice(device));
  if (acts.units < 1 || acts.h < 1 || acts.w < 1 || sh < 1 || sw < 1 ||
      acts.data.size() != static_cast<size_t>(acts.units) * acts.plane()) {
    return InvalidArgument("TensorUpsample: bad sizes");
  }
  std::vector<float> out;
  ND_RETURN_IF_ERROR(Guard("TensorUpsample", [&]() -> Status {
    torch::NoGradGuard no_grad;
    const Tables t = MakeTables(acts.h, acts.w, sh, sw, dev);
    const torch::Tensor a =
        Upload(acts.data.data(), {1, acts.units, acts.h, acts.w}, torch::kFloat, dev);
    const torch::Tensor up = Upsample(a, t).to(torch::kCPU).contiguous();
    out.assign(up.data_ptr<float>(), up.data_ptr<float>() + up.numel());
    return Status::Ok();
  }));
  return out;
}

DeviceScorerFactory TensorEngine() {
  DeviceScorerFactory f;
  f.check_device = [](const std::string& device) { return CheckTensorDevice(device); };
  f.create = [](const std::vector<double>& thresholds, int num_labels, int num_categories,
                UnionRule rule, const std::string& device,
                int64_t chunk_bytes) -> StatusOr<std::unique_ptr<DeviceScorer>> {
    TensorScorerOptions o;
    o.device = device;
    o.chunk_bytes = chunk_bytes;
    ND_ASSIGN_OR_RETURN(std::unique_ptr<TensorScorer> scorer,
                        TensorScorer::Create(thresholds, num_labels, num_categories, rule, o));
    return std::unique_ptr<DeviceScorer>(std::move(scorer));
  };
  return f;
}

}  // namespace nd
