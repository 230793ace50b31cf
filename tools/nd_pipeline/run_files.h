// The files through which a running supervisor can be found without sockets: the
// <run dir>/supervisor.pid that `nd-pipeline up` writes while it runs, and the <run
// dir>/status.json it rewrites every second (metrics_board.h describes its content).
#pragma once

#include <cstdint>
#include <string>

#include "common/base/config.h"
#include "common/base/status.h"

namespace nd {

std::string StatusFilePath(const PipelineConfig& config);     // <run dir>/status.json
std::string SupervisorPidPath(const PipelineConfig& config);  // <run dir>/supervisor.pid

// The pid in a pid file; NotFound when the file is absent, DataLoss when it holds no pid.
StatusOr<int64_t> ReadPidFile(const std::string& path);

// True when `pid` is a live (not zombie) process whose command line names nd-pipeline, so a pid
// reused by an unrelated process after a crash does not count.
bool SupervisorAlive(int64_t pid);

// Writes this process's pid to `path` and removes the file when destroyed (only if it still holds
// this pid). Refuses when the file names another live supervisor.
class PidFile {
 public:
  static StatusOr<PidFile> Create(const std::string& path);
  PidFile(PidFile&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  PidFile& operator=(PidFile&&) = delete;
  PidFile(const PidFile&) = delete;
  ~PidFile();

 private:
  explicit PidFile(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace nd
