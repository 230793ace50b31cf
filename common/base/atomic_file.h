// Whole files: writes that readers never see half done (the bytes go to a temporary file in the
// same directory, "<path>.tmp.<pid>", which is then renamed over `path`: rename(2) is atomic within
// a file system; used for every result and state file: tally.csv, thresholds.csv, summary.json,
// status.json, the HTML report), and the one whole-file read.
#pragma once

#include <string>
#include <string_view>

#include "common/base/status.h"

namespace nd {

// Replaces `path` with `bytes` atomically. On failure the old file (if any) is unchanged and the
// temporary file is removed. Errors: IoError naming the file (cannot create or write the
// temporary file: disk full, not writable, missing directory; cannot rename it into place).
[[nodiscard]] Status WriteFileAtomically(const std::string& path, std::string_view bytes);

// The bytes of `path`. Errors: NotFound "<path>: cannot open file" (absent, unreadable, a
// directory); IoError "<path>: read error".
[[nodiscard]] StatusOr<std::string> ReadFileText(const std::string& path);

}  // namespace nd
