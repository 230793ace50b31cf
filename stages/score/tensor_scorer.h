// TensorScorer: the counts of IouTally (iou_tally.h) computed with LibTorch tensor operations on a
// torch device (config [score] device = "cuda" | "cuda:N"; the same code runs on "cpu", which is
// how the tests check it).
//
// Contract: after adding the same images, AddCountsTo() adds to an IouTally exactly the counts
// (images, every G[l], I[u,l], U[u,c], both union rules) that IouTally::AddImage() would have
// added, and MaskStats::maps / maps_skipped_max as UnitMaskBuilder counts them. Not "close":
// identical integers. Why, step by step:
//
//  1. Upsampling. The per-axis tables (indices i0/i1, weights l0/l1) are ComputeAxisSampling()'s,
//     computed on the host and uploaded. On the device, with separate elementwise tensor ops (one
//     kernel each, each result stored to a float32 tensor, so each is one IEEE float32 rounding):
//       row[u, r, x] = (wx0[x] * A[u, r, x0[x]]) + (wx1[x] * A[u, r, x1[x]])   mul, mul, add
//       up[u, y, x]  = (hy0[y] * row[u, y0[y], x]) + (hy1[y] * row[u, y1[y], x])
//     `row` of source row r is upsample.h's `top` (r = y0) or `bot` (r = y1), so this is the same
//     six roundings as BilinearAt() (multiplication and addition are commutative in IEEE
//     arithmetic, bit for bit). Gathers (index_select) copy values exactly. The one place a fused
//     multiply-add can enter is torch's add kernel, which computes a + alpha*b (vectorised as
//     fmadd(b, alpha, a) on the CPU; nvcc may contract it to fma on CUDA): with alpha = 1 the
//     product is exact, so fma(b, 1, a) rounds a + b once, the same value. Denormals are kept
//     (LibTorch does not flush them unless set_flush_denormal(true) is called, which nd-pipeline
//     never does; PyTorch's CUDA kernels are not built with fast-math).
//  2. Threshold. M[p] = any(A > Tf) and up[p] > Tf in float32, Tf = ThresholdAsFloat(T) uploaded
//     as a float32 tensor (never a Scalar, which torch would round to nearest). any(A > Tf) is
//     "max A > T" with NaN values ignored, as UnitMaskBuilder does (amax() would propagate NaN).
//     Maps that fail it (most maps, at Network Dissection's thresholds) have empty masks: only
//     the maps that pass are gathered (nonzero, one host sync per batch) and upsampled.
//  3. Counts. Per image, the label index's pixel sets (one column per (layer, label) set, for
//     the lite rule one per category set, and an all-ones column whose count is |M|) are unpacked
//     on the host to a 0/1 matrix [P, K + 1]; the image's masks [maps, P] (0/1) times it is one
//     float32 matmul. Every partial sum of 0/1
//     products is an integer <= P, exact in float32 while P <= 2^24 (enforced: larger grids are
//     InvalidArgument), whatever the summation order or blocking (TF32 would not change it either:
//     0 and 1 are exact in TF32). The per-image results are converted to int64 and accumulated in
//     int64 tensors with index_add_ (label / category columns), so totals are exact for any number
//     of images. Scalar labels add |M|; union counts add
//     |M| per category present (paper) or per category whose set the mask meets or that has a
//     scalar label (lite) — IouTally::AddImage's rules. G is counted on the host exactly as there.
//
// Memory: images are queued (host copies of the activations and unpacked label columns) and run in
// batches of up to `batch_images` images of one geometry; the maps that pass the gate are
// processed in chunks sized so that one chunk's intermediates stay under about `chunk_bytes` of
// device memory. The device also holds the batch's activations and columns (B × P × (K + 1)
// float32) and the int64 accumulators, units × (labels + categories + 2) × 8 bytes.
//
// Errors: AddImage() validates like IouTally::AddImage() and returns InvalidArgument without
// adding anything; any LibTorch failure (device out of memory, CUDA error) is returned as Internal
// from AddImage() (when it ran a batch), Flush() or AddCountsTo(), and the scorer is then unusable.
//
// Thread-safety: not thread-safe; use one TensorScorer per thread (several may share a device).
// The header does not include LibTorch.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/base/activation_map.h"
#include "common/base/status.h"
#include "common/maths/dissector.h"
#include "common/maths/iou_tally.h"
#include "common/maths/label_index.h"
#include "common/maths/unit_mask.h"

namespace nd {

struct TensorScorerOptions {
  std::string device = "cpu";                // "cpu" | "cuda" | "cuda:N"
  int batch_images = 16;                     // images per device batch, >= 1
  int64_t chunk_bytes = int64_t{256} << 20;  // intermediates of one unit chunk, approx.
};

// Checks that `device` names a usable torch device: InvalidArgument for a malformed name,
// FailedPrecondition when CUDA is requested but not available (in this LibTorch build or on this
// machine) or the index does not exist. One line, naming the device.
Status CheckTensorDevice(const std::string& device);

class TensorScorer final : public DeviceScorer {
 public:
  // Same arguments as IouTally's constructor. Errors: CheckTensorDevice(), batch_images < 1,
  // chunk_bytes < 1, NaN thresholds, no units.
  static StatusOr<std::unique_ptr<TensorScorer>> Create(const std::vector<double>& thresholds,
                                                        int num_labels, int num_categories,
                                                        UnionRule rule,
                                                        const TensorScorerOptions& options);
  ~TensorScorer() override;
  TensorScorer(const TensorScorer&) = delete;
  TensorScorer& operator=(const TensorScorer&) = delete;

  // Queues one image (copies what it needs; `labels` and `acts` may be reused after the call) and
  // runs the queue when it is full or the geometry changes. Errors: see the header comment.
  Status AddImage(const LabelIndex& labels, const ActivationMap& acts) override;
  // Runs the queued images.
  Status Flush();
  // Flushes, then adds the accumulated counts to `tally` (built with the same thresholds, labels,
  // categories and rule) and resets the scorer's counts to zero.
  Status AddCountsTo(IouTally* tally) override;
  // Mask counters of the images added since the last AddCountsTo() (maps, maps_skipped_max; the
  // cell counters stay 0: there are no cells). Flushes first.
  StatusOr<MaskStats> TakeMaskStats() override;

  int units() const;
  const std::string& device() const;

 private:
  struct Impl;
  explicit TensorScorer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The tensor engine for ScoreOptions::tensor_engine: CheckTensorDevice and TensorScorer::Create
// (batch_images at its default).
DeviceScorerFactory TensorEngine();

// The tensor upsampling of every unit of `acts` to sh×sw on `device`, copied back to the host:
// out[(u*sh + y)*sw + x]. The same code as TensorScorer's masks; for tests (it must equal
// UpsampleBilinear bit for bit).
StatusOr<std::vector<float>> TensorUpsample(const std::string& device, const ActivationMap& acts,
                                            int sh, int sw);

}  // namespace nd
