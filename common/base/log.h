// Plain log lines on stderr: "<time> <level> <component>: message". Thread-safe (one write per
// line). The component is set once per process (the stage or tool name).
#pragma once

#include <string>

namespace nd {

enum class LogLevel { kDebug = 0, kInfo, kWarning, kError };

void SetLogComponent(const std::string& component);
void SetLogLevel(LogLevel level);
void Log(LogLevel level, const std::string& message);
inline void LogInfo(const std::string& m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(const std::string& m) { Log(LogLevel::kWarning, m); }
inline void LogError(const std::string& m) { Log(LogLevel::kError, m); }
inline void LogDebug(const std::string& m) { Log(LogLevel::kDebug, m); }

}  // namespace nd
