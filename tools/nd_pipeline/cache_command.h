// `nd-pipeline cache stats|verify|gc`: inspection and maintenance of the activation cache named by
// cache.dir. All three are safe while a pipeline runs: LMDB gives readers a consistent snapshot,
// and gc deletes in ordinary write transactions (a running writer simply waits its turn).
//   stats                   entries and bytes per model/layer (names from the layer manifests)
//   verify                  decodes every record, checks checksums, clears stale reader slots;
//                           exit 1 when a record is bad
//   gc --keep-model FILE…   deletes every layer group whose model digest is not one of FILE's
#pragma once

#include <string>
#include <vector>

#include "common/base/config.h"

namespace nd {

// The command line of `nd-pipeline cache ...`, parsed by nd-pipeline's main.
struct CacheCommandArgs {
  std::string subcommand;                // stats, verify or gc
  std::vector<std::string> keep_models;  // gc --keep-model FILE (repeatable)
  std::string older_than;                // gc --older-than AGE ("30d", "12h", …); "" = not given
};

// Prints to stdout; returns the process exit code.
int RunCacheCommand(const PipelineConfig& config, const CacheCommandArgs& args);

}  // namespace nd
