// The two files nd-train writes about a network, besides its weights: their one writer and reader.
// LibTorch-free (library nd_train_record), so that the study report can read the records;
// loading the model itself is train_record.h (LoadTrainedModel).
//
//   - the model description, "extra/nd_train.json" inside every saved TorchScript file (the final
//     model and each checkpoint): what a user needs to run the network on new images, and what
//     --init-from reads back to rebuild the architecture;
//   - the training record, a JSON sidecar next to every saved model: "<out>.json" for the final
//     model and "<out>.ckpt-<iteration>.json" for the checkpoint "<out>.ckpt-<iteration>.pt": how
//     far training had got (iteration, epoch), how well the network did at that point, on which
//     task, and every option of the run. A study of training conditions (how interpretability
//     changes over iterations, with the task, from a random network, after fine-tuning) reads these
//     with ReadTrainRecord / ListTrainRecords / TrainRecordPathFor.
//
// FORMAT: model description (extra/nd_train.json), one line of JSON, keys in this order:
//   {"tool": "nd-train", "arch": "resnet"|"alexnet", "width": W, "blocks": N,
//    "stem_pool": bool, "last_stride": 1|2, "batchnorm": bool, "dropout": bool,
//    "input_size": S, "preprocess": "torchvision"|"netdissect", "seed": S, "epochs": E,
//    "classes": [names, logit order], "class_labels": [Broden label numbers, logit order]
//    [, "task": "object"|"texture"]                              only when the task is not scene
//    [, "init_from": "PATH", "init_from_sha256": "64 hex"]       only when fine-tuned}
// The optional keys are left out for a default (scene, from scratch) run so that its file is byte
// for byte what nd-train wrote before they existed (the demo model's sha256 stays reproducible);
// a reader takes a missing "task" as "scene" and a missing "init_from" as "from scratch".
//
// FORMAT: training record (<out>.json, <out>.ckpt-<iteration>.json), one JSON object and '\n':
//   "format": "nd-train-record"      always; a reader refuses anything else
//   "version": 1                     bumped when a field changes meaning or is removed
//   "model": "NAME.pt"               file name (no directory) of the model it describes, in the
//                                    same directory as the record
//   "final": bool                    true for <out>.json, false for checkpoints
//   "iteration": I                   optimiser steps done when the model was saved, 0..total
//   "total_iterations": T            steps of the whole run (batches per epoch x epochs)
//   "epoch": X                       I / batches per epoch (fractional; 0.0 when nothing was
//                                    trained)
//   "train_accuracy": A              fraction of the training images the saved model classifies
//                                    right, eval mode, no augmentation
//   "val_accuracy": A                same on the validation images; 0 when there are none
//   "train_images", "val_images": N  images of each split used
//   "skipped_images": N              index.csv rows without a label for the task
//   "task": "scene"|"object"|"texture"
//   "classes": [names], "class_labels": [numbers]   as in the model description
//   "seed": S
//   "init_from": "PATH"|"", "init_from_sha256": "64 hex"|""   the source of a fine-tuned run
//   "options": {...}                 every option of the run, keyed by its flag without the
//                                    leading dashes and with '-' as '_': data, out, arch, width,
//                                    blocks, stem_pool, last_stride, batchnorm, dropout, epochs,
//                                    seed, input_size, batch_size, lr, optimizer,
//                                    checkpoint_every, checkpoint_schedule, checkpoints, threads,
//                                    preprocess, flip, task, init_from (on/off flags as bools)
// Reals (epoch, accuracies, lr) are written in the shortest form that reads back to the same
// double (Python's repr: 0.05, 0.6875, 0.0). Records are written atomically (WriteFileAtomically)
// after their model file, so a record never names a model that is not there yet. Readers ignore
// unknown keys (new fields are additions).
//
// Thread-safety: pure functions over files; safe to call concurrently on different files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/base/status.h"
#include "tools/train/train_options.h"

namespace nd {

// extra/nd_train.json, parsed.
struct ModelDescription {
  ModelSpec model;  // num_classes = classes.size()
  int input_size = 0;
  std::string preprocess;
  uint64_t seed = 0;
  int epochs = 0;
  std::string task = "scene";
  std::vector<std::string> classes;
  std::vector<int> class_labels;
  std::string init_from, init_from_sha256;  // empty unless fine-tuned
};

// The model description of a run with `options` on `classes` (names) / `class_labels`.
// `init_from_sha256` is written only when options.init_from is set.
std::string FormatModelDescription(const TrainOptions& options,
                                   const std::vector<std::string>& classes,
                                   const std::vector<int>& class_labels,
                                   const std::string& init_from_sha256);

// Parses a model description; errors (DataLoss) are "<what>: <reason>".
[[nodiscard]] StatusOr<ModelDescription> ParseModelDescription(const std::string& json,
                                                               const std::string& what);

// A training record, parsed (see FORMAT above).
struct TrainRecord {
  std::string path;   // the record's own file (set by the readers)
  std::string model;  // the model's file name, same directory
  bool final = false;
  int64_t iteration = 0, total_iterations = 0;
  double epoch = 0;
  double train_accuracy = 0, val_accuracy = 0;
  int64_t train_images = 0, val_images = 0, skipped_images = 0;
  std::string task = "scene";
  std::vector<std::string> classes;
  std::vector<int> class_labels;
  uint64_t seed = 0;
  std::string init_from, init_from_sha256;
  TrainOptions options;  // every option of the run
};

// Where the records of a run with --out `out` go.
std::string FinalRecordPath(const std::string& out);                          // "<out>.json"
std::string CheckpointPath(const std::string& out, int64_t iteration);        // "<out>.ckpt-I.pt"
std::string CheckpointRecordPath(const std::string& out, int64_t iteration);  // "...-I.json"

// The record of the model file `model_path`: "<out>.ckpt-<I>.json" for a checkpoint
// "<out>.ckpt-<I>.pt" (digits only between "ckpt-" and ".pt"), else "<model_path>.json" (the final
// model "<out>"). Pure string work; the file may not exist.
std::string TrainRecordPathFor(const std::string& model_path);

// The record as a file's bytes (one line of JSON and '\n'). record.path is not written.
std::string FormatTrainRecord(const TrainRecord& record);

// Writes FormatTrainRecord(record) to `path` atomically. Errors: IoError naming the file.
[[nodiscard]] Status WriteTrainRecord(const std::string& path, const TrainRecord& record);

// Reads one record. Errors name the file: NotFound (no such file), DataLoss (not JSON, not an
// nd-train record, unsupported version, a missing or malformed field).
[[nodiscard]] StatusOr<TrainRecord> ReadTrainRecord(const std::string& path);

// Every record of the run with --out `out`: its checkpoints' records ("<out>.ckpt-<I>.json" in
// out's directory) by increasing iteration, then "<out>.json" when it exists. Errors: those of
// ReadTrainRecord; NotFound when there is no record at all.
[[nodiscard]] StatusOr<std::vector<TrainRecord>> ListTrainRecords(const std::string& out);

}  // namespace nd
