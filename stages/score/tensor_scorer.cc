#include "stages/score/tensor_scorer.h"

#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <utility>

#include "stages/score/upsample.h"

namespace nd {
namespace {

// Largest grid whose per-image 0/1 matmul sums are exact in float32 (see the header, step 3).
constexpr int64_t kMaxExactPixels = int64_t{1} << 24;

std::string FirstLine(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  return line.empty() ? std::string("unknown LibTorch error") : line;
}

// Runs fn() (returning Status) and turns a LibTorch exception into Internal("<what>: <reason>").
template <typename Fn>
Status Guard(const std::string& what, Fn&& fn) {
  try {
    return fn();
  } catch (const c10::Error& e) {
    return Internal(what + ": " + FirstLine(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return Internal(what + ": " + FirstLine(e.what()));
  }
}

StatusOr<torch::Device> ParseDevice(const std::string& spec) {
  if (spec == "cpu") return torch::Device(torch::kCPU);
  if (spec != "cuda" && spec.rfind("cuda:", 0) != 0) {
    return InvalidArgument("score device '" + spec + "' is not one of cpu, cuda, cuda:N");
  }
  int index = 0;
  if (spec != "cuda") {
    const std::string digits = spec.substr(5);
    if (digits.empty() || digits.size() > 4 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      return InvalidArgument("score device '" + spec + "' is not one of cpu, cuda, cuda:N");
    }
    index = std::stoi(digits);
  }
  bool available = false;
  int count = 0;
  try {
    available = torch::cuda::is_available();
    count = available ? static_cast<int>(torch::cuda::device_count()) : 0;
  } catch (const std::exception& e) {
    return FailedPrecondition("score device '" + spec + "': cannot query CUDA: " +
                              FirstLine(e.what()));
  }
  if (!available) {
    return FailedPrecondition("score device '" + spec +
                              "' requested but CUDA is not available in this LibTorch build or "
                              "machine; set score.device = \"cpu\"");
  }
  if (index >= count) {
    return FailedPrecondition("score device '" + spec + "' does not exist; this machine has " +
                              std::to_string(count) + " CUDA device(s)");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

// A host buffer copied to `device` (always a copy, also on the CPU, so the host buffer may be
// reused afterwards).
torch::Tensor Upload(const void* data, at::IntArrayRef sizes, torch::ScalarType type,
                     const torch::Device& device) {
  torch::Tensor host = torch::from_blob(const_cast<void*>(data), sizes,
                                        torch::TensorOptions().dtype(type));
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

// up[b, u, y, x] for A = [B, U, h, w] float32: the arithmetic of upsample.h, one tensor op per
// IEEE operation (see tensor_scorer.h, step 1).
torch::Tensor Upsample(const torch::Tensor& a, const Tables& t) {
  torch::Tensor row;
  {
    torch::Tensor left = a.index_select(3, t.x0).mul(t.wx0);   // wx0 * A[r][x0]
    torch::Tensor right = a.index_select(3, t.x1).mul(t.wx1);  // wx1 * A[r][x1]
    row = left.add(right);                                     // [B, U, h, sw]
  }
  torch::Tensor top = row.index_select(2, t.y0).mul(t.hy0);  // hy0 * top
  torch::Tensor bot = row.index_select(2, t.y1).mul(t.hy1);  // hy1 * bot
  row = torch::Tensor();
  return top.add(bot);  // [B, U, sh, sw]
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
  torch::Tensor acc_i, acc_u, acc_skipped;
  std::vector<int64_t> g;  // on the host
  int64_t images = 0, maps = 0;

  // The queue: images of one geometry.
  struct Image {
    std::vector<uint8_t> columns;      // K*P 0/1 bytes: pixel sets (label targets, then categories)
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
      acc_skipped = torch::zeros({}, longs);
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
  if (acts.units != s.units) {
    return InvalidArgument("activation map has " + std::to_string(acts.units) +
                           " units, thresholds have " + std::to_string(s.units));
  }
  if (acts.h <= 0 || acts.w <= 0) {
    return InvalidArgument("activation map size " + std::to_string(acts.h) + "x" +
                           std::to_string(acts.w) + " is not positive");
  }
  if (acts.data.size() != static_cast<size_t>(acts.units) * acts.plane()) {
    return InvalidArgument("activation map holds " + std::to_string(acts.data.size()) +
                           " values, expected " + std::to_string(acts.units) + "x" +
                           std::to_string(acts.h) + "x" + std::to_string(acts.w));
  }
  if (labels.num_labels() > s.num_labels || labels.num_categories() > s.num_categories) {
    return InvalidArgument("label index built for " + std::to_string(labels.num_labels()) +
                           " labels and " + std::to_string(labels.num_categories()) +
                           " categories, tally has " + std::to_string(s.num_labels) + " and " +
                           std::to_string(s.num_categories));
  }
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

  if (!s.q_images.empty() && (acts.h != s.qh || acts.w != s.qw || labels.sh() != s.qsh ||
                              labels.sw() != s.qsw)) {
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
  // Host tables of the batch: columns [B, K, P] (0/1 bytes, padded with zero columns), their
  // targets in acc_i, scalar entries (image, label), union entries (image, category, column).
  int64_t k = 1;
  for (const Image& im : q_images) k = std::max<int64_t>(k, im.column_label.size());
  std::vector<uint8_t> columns(static_cast<size_t>(b * k * p), 0);
  std::vector<int64_t> column_label(static_cast<size_t>(b * k), num_labels);
  std::vector<int64_t> scalar_image, scalar_label, union_image, union_category, union_column;
  const int64_t always = b * k;  // the extra all-ones column of `hit` below
  for (int64_t i = 0; i < b; ++i) {
    const Image& im = q_images[i];
    std::memcpy(columns.data() + i * k * p, im.columns.data(), im.columns.size());
    std::copy(im.column_label.begin(), im.column_label.end(), column_label.begin() + i * k);
    for (int l : im.scalar_labels) {
      scalar_image.push_back(i);
      scalar_label.push_back(l);
    }
    for (const Image::Union& un : im.unions) {
      union_image.push_back(i);
      union_category.push_back(un.category);
      union_column.push_back(un.column < 0 ? always : i * k + un.column);
    }
  }
  auto longs = [&](const std::vector<int64_t>& v) {
    return Upload(v.data(), {static_cast<int64_t>(v.size())}, torch::kLong, device);
  };
  const torch::Tensor cols =  // [B, P, K] float32 0/1
      Upload(columns.data(), {b, k, p}, torch::kByte, device).to(torch::kFloat).transpose(1, 2);
  const torch::Tensor col_label = longs(column_label);
  const bool has_scalars = !scalar_image.empty(), has_unions = !union_image.empty();
  const torch::Tensor s_image = longs(scalar_image), s_label = longs(scalar_label);
  const torch::Tensor u_image = longs(union_image), u_category = longs(union_category),
                      u_column = longs(union_column);
  const torch::Tensor acts = Upload(q_acts.data(), {b, units, qh, qw}, torch::kFloat, device);

  // Unit chunks: ~30 bytes per unit, image and output pixel (up to five float32 intermediates of
  // the upsampling, the bool and float masks).
  const int64_t per_unit = b * (30 * p + 24 * static_cast<int64_t>(qh) * qsw) + 1;
  const int64_t chunk =
      std::max<int64_t>(1, std::min<int64_t>(units, options.chunk_bytes / per_unit));
  for (int64_t u0 = 0; u0 < units; u0 += chunk) {
    const int64_t uc = std::min<int64_t>(chunk, units - u0);
    const torch::Tensor a = acts.narrow(1, u0, uc);            // [B, uc, h, w]
    const torch::Tensor t = tf.narrow(0, u0, uc).view({1, uc, 1, 1});
    const torch::Tensor gate = a.gt(t).flatten(2).any(2);      // [B, uc]: max A > T, NaN ignored
    const torch::Tensor mask =                                 // [B, uc, P] bool
        Upsample(a, tables).gt(t).logical_and(gate.view({b, uc, 1, 1})).view({b, uc, p});
    const torch::Tensor m = mask.sum(2).t();                   // int64 [uc, B]: |M|
    const torch::Tensor counts =                               // int64 [uc, B*K]: |M ∩ column|
        torch::bmm(mask.to(torch::kFloat), cols).to(torch::kLong).permute({1, 0, 2}).reshape(
            {uc, b * k});
    torch::Tensor acc_i_rows = acc_i.narrow(0, u0, uc);
    acc_i_rows.index_add_(1, col_label, counts);
    if (has_scalars) acc_i_rows.index_add_(1, s_label, m.index_select(1, s_image));
    if (has_unions) {
      torch::Tensor add = m.index_select(1, u_image);
      if (rule == UnionRule::kLite) {
        const torch::Tensor hit = torch::cat(
            {counts.gt(0).to(torch::kLong), torch::ones({uc, 1}, counts.options())}, 1);
        add = add.mul(hit.index_select(1, u_column));
      }
      acc_u.narrow(0, u0, uc).index_add_(1, u_category, add);
    }
    acc_skipped.add_(gate.logical_not().sum());
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
  Status st = Guard("score (tensor, " + s.device_name + ")", [&]() -> Status {
    stats.maps = s.maps;
    stats.maps_skipped_max = s.acc_skipped.item<int64_t>();
    s.acc_skipped.zero_();
    s.maps = 0;
    return Status::Ok();
  });
  if (!st.ok()) return st;
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
    const torch::Tensor a = Upload(acts.data.data(), {1, acts.units, acts.h, acts.w},
                                   torch::kFloat, dev);
    const torch::Tensor up = Upsample(a, t).to(torch::kCPU).contiguous();
    out.assign(up.data_ptr<float>(), up.data_ptr<float>() + up.numel());
    return Status::Ok();
  }));
  return out;
}

}  // namespace nd
