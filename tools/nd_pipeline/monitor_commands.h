// `nd-pipeline status`, `top` and `down`: attach to a running pipeline through the files in its run
// directory (run_files.h), never through its sockets, so they work from any shell on the host and
// cannot disturb the run.
//
//   status [-c FILE] [--set K=V ...] [--json]   one-shot table (or the status.json text)
//   top    [-c FILE] [--set K=V ...] [--iterations N]
//                                               live view, once per second; q or Ctrl-C quits;
//                                               without a terminal, one table per second
//   down   [-c FILE] [--set K=V ...] [--timeout S]
//                                               SIGTERM to the supervisor, then wait (default 30 s)
//
// Exit codes: 0 on success; 1 with "nd-pipeline: no pipeline is running for <config>" when the
// run directory has no status or pid file or its supervisor is not alive, or on another failure;
// 2 for bad arguments.
#pragma once

#include <functional>
#include <string>

#include "common/base/config.h"

namespace nd {

// Runs `command` ("status", "top" or "down") with argv[first..argc) as its arguments.
// `sharded_status`, when set, is asked first by `status` (without --json): it returns the exit
// code after showing a sharded run, or -1 when the configuration has none.
int RunMonitorCommand(const std::string& command, int argc, char** argv, int first,
                      const std::function<int(const PipelineConfig&)>& sharded_status = {});

// The usage lines of the three commands, for nd-pipeline's --help.
extern const char kMonitorUsage[];

}  // namespace nd
