// nd-train's logic: trains one of the networks of model_builder.h to classify the images of a
// Broden-format dataset and saves it as a TorchScript file that the pipeline dissects like any
// user's model. The training conditions the paper compares (§4: random initialisation, training
// task, fine-tuning, snapshots over training) are options of one run.
//
// Task (--task), i.e. what the class of an image is; rows without one are skipped and counted:
//   scene (default): the row's `scene` scalar label in index.csv (the first one when a row has
//     several). Classes: every label of c_scene.csv, in label-number order, so class k of the
//     network is the same scene for every dataset the generator writes.
//   texture: the row's `texture` scalar label (first one), exactly as scene. Classes: every label
//     of c_texture.csv in label-number order.
//   object: the label covering the most pixels of the row's `object` pixel layers, pixels summed
//     over all of them (ties: the lowest label number); only labels that have a row in
//     c_object.csv count (pixels of any other label, and 0, are ignored). Rows without an object
//     layer, or whose object layers hold no such pixel, are skipped. Classes: the c_object.csv
//     labels that are the class of at least one used row (either split), in label-number order.
//     (The analogue of ImageNet's objects vs. Places' scenes.)
// The `split` column decides train vs. validation ("val" is validation, anything else is
// training). Every used image is decoded once (OpenCV) and preprocessed by PreprocessRgb
// (stages/decode), the pipeline's own preprocessing, into one float tensor in memory
// (n·3·S·S·4 bytes: 2,000 images at S = 128 take ~400 MB). A file that is missing or does not
// decode is an error naming it.
//
// Initialisation: the network is built from torch::manual_seed(seed) (model_builder.h). With
// --init-from MODEL.pt (a file nd-train saved), its architecture is read from MODEL.pt's
// extra/nd_train.json (train_record.h) and every parameter and buffer is then copied from MODEL.pt
// except those of the final classifier layer (ClassifierName: resnet `fc`, alexnet's last
// `classifier.N`), which keep the fresh seed-initialised values sized for the new task's classes.
// The source's path and sha256 are recorded in the new model's description and records.
//
// Training: mini-batch SGD with momentum 0.9 and weight decay 5e-4 (or Adam), cross-entropy, the
// learning rate following a cosine from --lr to 0 over all iterations; each epoch visits the
// training images in a fresh random order and flips each image horizontally with probability 1/2.
// A final partial batch of one image is dropped (BatchNorm needs two). After every epoch the
// validation accuracy is measured in eval mode; at the end, train and validation accuracy are both
// measured in eval mode without augmentation. --epochs 0 trains nothing: the saved network is the
// initialisation (the random-network baseline, or the source network with a fresh classifier),
// measured and recorded like any other.
//
// Determinism: for the same options (threads included) and dataset, the saved parameters are
// bit-identical: weights come from torch::manual_seed(seed), the order and flips from a
// std::mt19937_64 seeded with seed, dropout from LibTorch's generator, and the TorchScript graph
// executor's optimisations are off while training (each op runs as in eager mode). Checkpoints
// and their accuracy measurements (eval mode, no random numbers drawn) do not change the weights.
//
// Files: --out is written through "<out>.partial" and renamed, then its training record
// "<out>.json". Checkpoints go to "<out>.ckpt-<iteration>.pt" (iteration counted from 1 over the
// whole run), each followed by its record "<out>.ckpt-<iteration>.json", at the iterations of the
// schedule: every K iterations (--checkpoint-every K), or geometric (--checkpoint-schedule
// geometric --checkpoints N: GeometricCheckpoints below). Models are saved in eval mode with an
// extra file "extra/nd_train.json" naming the classes, input size, preprocessing and options. Both
// JSON formats are in train_record.h.
//
// Process-wide effects: sets LibTorch's intra-op thread count (torch::set_num_threads) and the
// global seed. Not thread-safe: one Train at a time per process.
#pragma once

#include <torch/script.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "tools/train/model_builder.h"
#include "tools/train/train_options.h"

namespace nd {

// Checks every option and the model spec; errors name the flag.
[[nodiscard]] Status ValidateTrainOptions(const TrainOptions& options);

// Parses nd-train's command line (argv without the program name) on top of the defaults above.
// `--flag value` and `--flag=value` both work; on/off flags take "on" or "off". Errors (one line,
// naming the flag): unknown flag, missing or malformed value, value out of range, missing --data
// or --out, flags that do not go together. With --init-from, reads the model's description and
// takes the architecture (--arch --width --blocks --stem-pool --last-stride --batchnorm
// --dropout) from it; such a flag given explicitly with another value is an error naming it
// ("--width: 8 conflicts with --init-from m.pt (width 4)"). Sets *help when -h/--help is given
// (then nothing is required).
[[nodiscard]] StatusOr<TrainOptions> ParseTrainArgs(const std::vector<std::string>& args,
                                                    bool* help);

// nd-train's --help text.
extern const char kTrainUsage[];

// The checkpoint iterations of --checkpoint-schedule geometric for a run of `total` iterations:
// round(r^k) for k = 0..count-1 with r = total^(1/(count-1)), so the first is 1 and the last is
// `total`; round() is to the nearest integer, halves away from zero. Duplicates (small `total`) are
// dropped, so there may be fewer than `count`. Empty when total is 0. REQUIRES: count >= 2.
std::vector<int64_t> GeometricCheckpoints(int64_t total, int count);

// The images of a dataset that carry a label for the task, decoded and preprocessed.
struct TrainingImages {
  std::string task = "scene";            // the TrainOptions::task they were loaded for
  std::vector<std::string> class_names;  // class k (see the top of this file)
  std::vector<int> class_labels;         // their global label numbers
  // Train and validation sets: [n, 3, S, S] float32 and [n] int64 class indices.
  torch::Tensor train_x, train_y, val_x, val_y;
  int64_t skipped_unlabelled = 0;  // index.csv rows without a label for the task
};

// Reads the dataset at options.data_dir, labels the rows for options.task and decodes the images.
// Errors name the directory or the file: missing dataset ("--data /x: /x/index.csv: no such
// file"), no category for the task, fewer than 2 classes, fewer than 2 labelled training images,
// an image or object layer that does not decode.
[[nodiscard]] StatusOr<TrainingImages> LoadTrainingImages(const TrainOptions& options);

struct EpochReport {
  int epoch = 0;              // 1-based
  int64_t iterations = 0;     // total iterations done so far
  double train_loss = 0;      // mean loss over the epoch's batches
  double train_accuracy = 0;  // running accuracy over the epoch (train mode, augmented)
  double val_accuracy = 0;    // eval mode; 0 when there are no validation images
  double seconds = 0;         // wall time of the epoch, validation included
};

struct TrainReport {
  std::vector<std::string> class_names;
  int64_t train_images = 0, val_images = 0, skipped_images = 0;
  int64_t parameters = 0;              // number of trainable scalars
  std::vector<double> iteration_loss;  // the loss of every iteration, in order
  std::vector<EpochReport> epochs;
  double final_train_accuracy = 0;       // eval mode, no augmentation, all training images
  double final_val_accuracy = 0;         // eval mode; 0 when there are no validation images
  std::vector<std::string> checkpoints;  // paths written, in order
  std::string init_from_sha256;          // of options.init_from; "" when not fine-tuned
  double load_seconds = 0, train_seconds = 0;
};

// Called after data loading (with a one-line summary) and after every epoch; may be empty.
struct TrainCallbacks {
  std::function<void(const std::string& line)> on_message;
  std::function<void(const EpochReport& epoch)> on_epoch;
};

// Loads the data, builds, trains and saves the network (see the top of this file).
[[nodiscard]] StatusOr<TrainReport> Train(const TrainOptions& options,
                                          const TrainCallbacks& callbacks = {});

// Same, on images already loaded by LoadTrainingImages (the options must match those used there).
[[nodiscard]] StatusOr<TrainReport> TrainOn(const TrainingImages& data, const TrainOptions& options,
                                            const TrainCallbacks& callbacks = {});

}  // namespace nd
