// The options of an nd-train run and of the network it builds, as plain data: no LibTorch, so that
// readers of training records (train_record_file.h: the study report) need nothing but this.
// Validation and use: model_builder.h (ModelSpec), trainer.h (TrainOptions).
#pragma once

#include <cstdint>
#include <string>

namespace nd {

// The network (model_builder.h describes each field's effect).
struct ModelSpec {
  std::string arch = "resnet";  // "resnet" or "alexnet"
  int width = 32;               // W of model_builder.h; 1..512
  int blocks = 1;               // resnet only: BasicBlocks per stage, 1 or 2
  bool stem_pool = true;        // resnet only: the maxpool after conv1
  int last_stride = 2;          // resnet only: stride of layer4, 2 or 1
  bool batchnorm = true;
  bool dropout = false;  // p = 0.5 before the classifier's linear layers
  int num_classes = 9;   // >= 2
};

// One nd-train run; each field is the flag named beside it (trainer.h: ParseTrainArgs).
struct TrainOptions {
  std::string data_dir;  // --data: a Broden-format directory (required)
  std::string out_path;  // --out: the TorchScript file to write (required)
  ModelSpec model;       // --arch --width --blocks --stem-pool --last-stride --batchnorm --dropout
  int epochs = 10;       // --epochs, >= 0 (0: save the initialisation, untrained)
  uint64_t seed = 1;     // --seed
  int input_size = 128;  // --input-size: images are resized to this square size, 32..1024
  int batch_size = 32;   // --batch-size, >= 2
  double lr = 0.05;      // --lr: peak learning rate, > 0
  std::string optimizer = "sgd";              // --optimizer: "sgd" or "adam"
  int64_t checkpoint_every = 0;               // --checkpoint-every K iterations; 0 = none
  std::string checkpoint_schedule = "every";  // --checkpoint-schedule: "every" or "geometric"
  int checkpoints = 0;                        // --checkpoints N (geometric only, >= 2)
  int threads = 0;                         // --threads: LibTorch and decode threads; 0 = all cores
  std::string preprocess = "torchvision";  // --preprocess: "torchvision" or "netdissect"
  bool flip = true;                        // --flip: random horizontal flips
  std::string task = "scene";              // --task: "scene", "object" or "texture"
  std::string init_from;                   // --init-from: a model nd-train saved; "" = scratch
};

}  // namespace nd
