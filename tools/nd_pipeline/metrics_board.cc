#include "tools/nd_pipeline/metrics_board.h"

#include <unistd.h>

#include <algorithm>
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/base/text_format.h"

namespace nd {
namespace {

constexpr double kRecentWindowS = 10;
// Below this busy share no stage is called the bottleneck: everyone is mostly waiting.
constexpr double kBottleneckMinBusy = 0.25;

double Clamp01(double v) { return std::isfinite(v) ? std::min(1.0, std::max(0.0, v)) : 0.0; }

// Shortest faithful-enough text of a double; JSON and Prometheus both take it.
std::string Num(double v) {
  if (!std::isfinite(v)) return "0";
  return FormatG(v, 15);  // 15: unix seconds keep their milliseconds
}

std::string LabelValue(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Rate(double r) {
  char buf[32];
  if (r >= 100 || r == 0)
    std::snprintf(buf, sizeof(buf), "%.0f", r);
  else
    std::snprintf(buf, sizeof(buf), "%.1f", r);
  return buf;
}

std::string Bytes(uint64_t b) {
  char buf[32];
  if (b >= (uint64_t{1} << 30))
    std::snprintf(buf, sizeof(buf), "%.1f GiB", b / double(uint64_t{1} << 30));
  else
    std::snprintf(buf, sizeof(buf), "%.0f MiB", b / double(1 << 20));
  return buf;
}

bool Finished(const std::string& state) {
  return state == "done" || state == "failed" || state == "stopped";
}

}  // namespace

const StageBoardRow* BoardSnapshot::Find(const std::string& stage) const {
  for (const auto& r : stages)
    if (r.stage == stage) return &r;
  return nullptr;
}

MetricsBoard::MetricsBoard(std::vector<std::string> stages, std::string config, std::string run_dir,
                           int64_t supervisor_pid, int http_port) {
  for (auto& s : stages) {
    Entry e;
    e.row.stage = s;
    e.row.metrics.stage = s;
    entries_.push_back(std::move(e));
  }
  run_.config = std::move(config);
  run_.run_dir = std::move(run_dir);
  run_.supervisor_pid = supervisor_pid;
  run_.http_port = http_port;
}

void MetricsBoard::Update(const StageMetrics& m, double now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Entry& e : entries_) {
    if (e.row.stage != m.stage) continue;
    StageBoardRow& row = e.row;
    const bool same_process = row.has_metrics && row.metrics.pid == m.pid;
    if (same_process && m.sequence <= row.metrics.sequence) return;  // late or duplicate
    if (!same_process) e.history.clear();  // a restarted stage starts its rates afresh
    e.history.push_back(m);
    while (e.history.size() > 2 && e.history.front().uptime_s < m.uptime_s - kRecentWindowS)
      e.history.pop_front();
    if (e.history.size() >= 2) {
      const StageMetrics& prev = e.history[e.history.size() - 2];
      double dt = m.uptime_s - prev.uptime_s;
      double idle = (m.blocked_s - prev.blocked_s) + (m.waiting_s - prev.waiting_s);
      row.busy_share = dt > 0 ? Clamp01(1 - idle / dt) : row.busy_share;
      const StageMetrics& first = e.history.front();
      double span = m.uptime_s - first.uptime_s;
      row.rate_recent = span > 0 ? (m.items_out - first.items_out) / span : m.rate_average;
    } else {
      row.busy_share = m.uptime_s > 0 ? Clamp01(1 - (m.blocked_s + m.waiting_s) / m.uptime_s) : 0;
      row.rate_recent = m.rate_average;
    }
    row.metrics = m;
    row.has_metrics = true;
    row.pid = static_cast<int64_t>(m.pid);
    if (row.state == "starting") row.state = "running";
    return;
  }
  (void)now_s;
}

void MetricsBoard::SetStageProcess(const std::string& stage, int64_t pid, const std::string& state,
                                   int exit_code) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Entry& e : entries_) {
    if (e.row.stage != stage) continue;
    if (state == "starting" && pid != e.row.pid && e.row.pid != 0) {
      StageBoardRow fresh;
      fresh.stage = e.row.stage;
      e.row = fresh;
      e.history.clear();
    }
    e.row.pid = pid;
    e.row.state = state;
    e.row.exit_code = exit_code;
  }
}

void MetricsBoard::SetRestarts(int restarts) {
  std::lock_guard<std::mutex> lock(mu_);
  run_.restarts = restarts;
}

void MetricsBoard::SetRunState(const std::string& state, const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  run_.state = state;
  run_.error = error;
}

bool MetricsBoard::AllFinal() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Entry& e : entries_)
    if (!e.row.has_metrics || !e.row.metrics.final) return false;
  return true;
}

BoardSnapshot MetricsBoard::Snapshot(double now_s) const {
  BoardSnapshot b;
  {
    std::lock_guard<std::mutex> lock(mu_);
    b = run_;
    for (const Entry& e : entries_) b.stages.push_back(e.row);
  }
  b.uptime_s = now_s;
  b.updated_unix_s =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  DeriveBoard(&b);
  return b;
}

void DeriveBoard(BoardSnapshot* board) {
  uint64_t pipeline_total = 0;
  for (const auto& r : board->stages)
    pipeline_total = std::max(pipeline_total, r.metrics.items_total);
  board->eta_s = -1;
  board->bottleneck.clear();
  double busiest = kBottleneckMinBusy;
  bool all_finished = !board->stages.empty();
  for (auto& r : board->stages) {
    r.total = r.metrics.items_total ? r.metrics.items_total : pipeline_total;
    if (Finished(r.state) || (r.total > 0 && r.metrics.items_out >= r.total)) {
      r.eta_s = 0;
    } else if (r.total > 0 && r.rate_recent > 0) {
      r.eta_s = (r.total - r.metrics.items_out) / r.rate_recent;
    } else {
      r.eta_s = -1;
    }
    all_finished = all_finished && Finished(r.state);
    if (!Finished(r.state)) board->eta_s = std::max(board->eta_s, r.eta_s);
    r.bottleneck = false;
    // A stage that has passed on all its items is finishing (draining, flushing, writing
    // results), not holding the others up.
    const bool has_work = r.total == 0 || r.metrics.items_out < r.total;
    if (r.state == "running" && r.has_metrics && has_work && r.busy_share >= busiest) {
      busiest = r.busy_share;
      board->bottleneck = r.stage;
    }
  }
  if (all_finished) board->eta_s = 0;
  for (auto& r : board->stages) r.bottleneck = r.stage == board->bottleneck;
}

std::string BoardToJson(const BoardSnapshot& b) {
  std::ostringstream o;
  o << "{\"format\": 1, \"config\": " << JsonString(b.config)
    << ", \"run_dir\": " << JsonString(b.run_dir) << ", \"supervisor_pid\": " << b.supervisor_pid
    << ", \"http_port\": " << b.http_port << ", \"state\": " << JsonString(b.state)
    << ", \"error\": " << JsonString(b.error) << ", \"uptime_s\": " << Num(b.uptime_s)
    << ", \"updated_unix_s\": " << Num(b.updated_unix_s) << ", \"eta_s\": " << Num(b.eta_s)
    << ", \"bottleneck\": " << JsonString(b.bottleneck) << ", \"restarts\": " << b.restarts
    << ",\n \"stages\": {";
  bool first = true;
  for (const auto& r : b.stages) {
    const StageMetrics& m = r.metrics;
    o << (first ? "\n  " : ",\n  ") << JsonString(r.stage) << ": {"
      << "\"state\": " << JsonString(r.state) << ", \"pid\": " << r.pid
      << ", \"exit_code\": " << r.exit_code
      << ", \"has_metrics\": " << (r.has_metrics ? "true" : "false")
      << ", \"sequence\": " << m.sequence << ", \"final\": " << (m.final ? "true" : "false")
      << ", \"items_in\": " << m.items_in << ", \"items_out\": " << m.items_out
      << ", \"items_total\": " << m.items_total << ", \"total\": " << r.total
      << ", \"skipped\": " << m.skipped << ", \"errors\": " << m.errors
      << ", \"rate_instant\": " << Num(m.rate_instant)
      << ", \"rate_average\": " << Num(m.rate_average)
      << ", \"rate_recent\": " << Num(r.rate_recent) << ", \"blocked_s\": " << Num(m.blocked_s)
      << ", \"waiting_s\": " << Num(m.waiting_s) << ", \"rss_bytes\": " << m.rss_bytes
      << ", \"uptime_s\": " << Num(m.uptime_s) << ", \"busy_share\": " << Num(r.busy_share)
      << ", \"eta_s\": " << Num(r.eta_s)
      << ", \"bottleneck\": " << (r.bottleneck ? "true" : "false") << "}";
    first = false;
  }
  o << "\n }\n}\n";
  return o.str();
}

StatusOr<BoardSnapshot> BoardFromJson(const std::string& text, const std::string& what) {
  namespace pt = boost::property_tree;
  try {
    pt::ptree tree;
    std::istringstream in(text);
    pt::read_json(in, tree);
    if (tree.get<int>("format", 0) != 1)
      return DataLoss(what + ": not an nd-pipeline status file (format 1)");
    BoardSnapshot b;
    b.config = tree.get<std::string>("config", "");
    b.run_dir = tree.get<std::string>("run_dir", "");
    b.supervisor_pid = tree.get<int64_t>("supervisor_pid");
    b.http_port = tree.get<int>("http_port", 0);
    b.state = tree.get<std::string>("state");
    b.error = tree.get<std::string>("error", "");
    b.uptime_s = tree.get<double>("uptime_s", 0);
    b.updated_unix_s = tree.get<double>("updated_unix_s", 0);
    b.eta_s = tree.get<double>("eta_s", -1);
    b.restarts = tree.get<int>("restarts", 0);
    b.bottleneck = tree.get<std::string>("bottleneck", "");
    for (const auto& [name, s] : tree.get_child("stages")) {
      StageBoardRow r;
      StageMetrics& m = r.metrics;
      r.stage = m.stage = name;
      r.state = s.get<std::string>("state");
      r.pid = s.get<int64_t>("pid", 0);
      r.exit_code = s.get<int>("exit_code", 0);
      r.has_metrics = s.get<bool>("has_metrics", false);
      m.pid = static_cast<uint64_t>(r.pid);
      m.sequence = s.get<uint64_t>("sequence", 0);
      m.final = s.get<bool>("final", false);
      m.items_in = s.get<uint64_t>("items_in", 0);
      m.items_out = s.get<uint64_t>("items_out", 0);
      m.items_total = s.get<uint64_t>("items_total", 0);
      r.total = s.get<uint64_t>("total", m.items_total);
      m.skipped = s.get<uint64_t>("skipped", 0);
      m.errors = s.get<uint64_t>("errors", 0);
      m.rate_instant = s.get<double>("rate_instant", 0);
      m.rate_average = s.get<double>("rate_average", 0);
      r.rate_recent = s.get<double>("rate_recent", 0);
      m.blocked_s = s.get<double>("blocked_s", 0);
      m.waiting_s = s.get<double>("waiting_s", 0);
      m.rss_bytes = s.get<uint64_t>("rss_bytes", 0);
      m.uptime_s = s.get<double>("uptime_s", 0);
      r.busy_share = s.get<double>("busy_share", 0);
      r.eta_s = s.get<double>("eta_s", -1);
      r.bottleneck = s.get<bool>("bottleneck", false);
      b.stages.push_back(std::move(r));
    }
    return b;
  } catch (const pt::ptree_error& e) {
    return DataLoss(what + ": " + e.what());
  }
}

std::string BoardToPrometheus(const BoardSnapshot& b) {
  struct Metric {
    const char* name;
    const char* type;
    const char* help;
    std::string (*value)(const StageBoardRow&);
  };
  static const Metric kMetrics[] = {
      {"nd_stage_items_in_total", "counter",
       "Images the stage has taken in (decode: read from the dataset).",
       [](const StageBoardRow& r) { return std::to_string(r.metrics.items_in); }},
      {"nd_stage_items_out_total", "counter",
       "Images the stage has passed on (score: scored, per layer and quantile).",
       [](const StageBoardRow& r) { return std::to_string(r.metrics.items_out); }},
      {"nd_stage_items_expected", "gauge", "Images the stage expects in this run (0 = unknown).",
       [](const StageBoardRow& r) { return std::to_string(r.total); }},
      {"nd_stage_skipped_total", "counter", "Images the stage skipped for bad input.",
       [](const StageBoardRow& r) { return std::to_string(r.metrics.skipped); }},
      {"nd_stage_errors_total", "counter", "Errors the stage reported.",
       [](const StageBoardRow& r) { return std::to_string(r.metrics.errors); }},
      {"nd_stage_items_per_second", "gauge",
       "Images passed on per second over the stage's last one-second interval.",
       [](const StageBoardRow& r) { return Num(r.metrics.rate_instant); }},
      {"nd_stage_rss_bytes", "gauge", "Resident set size of the stage process.",
       [](const StageBoardRow& r) { return std::to_string(r.metrics.rss_bytes); }},
      {"nd_stage_blocked_seconds_total", "counter",
       "Seconds the stage spent blocked on a slow consumer (back-pressure).",
       [](const StageBoardRow& r) { return Num(r.metrics.blocked_s); }},
      {"nd_stage_waiting_seconds_total", "counter", "Seconds the stage spent waiting for input.",
       [](const StageBoardRow& r) { return Num(r.metrics.waiting_s); }},
      {"nd_stage_busy_ratio", "gauge",
       "Share of the last interval the stage was neither waiting for input nor blocked.",
       [](const StageBoardRow& r) { return Num(r.busy_share); }},
      {"nd_stage_uptime_seconds", "gauge", "Seconds since the stage process started.",
       [](const StageBoardRow& r) { return Num(r.metrics.uptime_s); }},
  };
  std::string out;
  for (const Metric& m : kMetrics) {
    out += std::string("# HELP ") + m.name + " " + m.help + "\n";
    out += std::string("# TYPE ") + m.name + " " + m.type + "\n";
    for (const auto& r : b.stages)
      out += std::string(m.name) + "{stage=\"" + LabelValue(r.stage) + "\"} " + m.value(r) + "\n";
  }
  return out;
}

HttpResponse ServeBoard(const BoardSnapshot& board, const HttpRequest& request) {
  if (request.method != "GET" && request.method != "HEAD")
    return {405, "text/plain; charset=utf-8", "only GET and HEAD\n", {}};
  if (request.path == "/metrics")
    return {200, "text/plain; version=0.0.4; charset=utf-8", BoardToPrometheus(board), {}};
  if (request.path == "/status") return {200, "application/json", BoardToJson(board), {}};
  return {404,
          "text/plain; charset=utf-8",
          "not found: " + request.path + " (try /metrics or /status)\n",
          {}};
}

std::string FormatDuration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "-";
  long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof(buf), "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string ProgressLine(const BoardSnapshot& b) {
  char head[32];
  std::snprintf(head, sizeof(head), "[%6.1fs] ", b.uptime_s);
  std::string line = head;
  bool first = true;
  for (const auto& r : b.stages) {
    if (!first) line += " | ";
    first = false;
    line += r.stage + (r.bottleneck ? "*" : "");
    if (r.state == "failed" || r.state == "stopped" || r.state == "starting") {
      line += " " + r.state;
      continue;
    }
    if (r.state == "done") {
      line += " done";
      continue;
    }
    if (r.total > 0) {
      int pct = static_cast<int>(std::min<uint64_t>(100, r.metrics.items_out * 100 / r.total));
      line += " " + std::to_string(pct) + "%";
    } else {
      line += " " + std::to_string(r.metrics.items_out);
    }
    if (r.rate_recent > 0) line += " " + Rate(r.rate_recent) + "/s";
  }
  if (b.eta_s >= 0 && b.state == "running") line += " | ETA " + FormatDuration(b.eta_s);
  return line;
}

std::string BoardTable(const BoardSnapshot& b) {
  std::string out = "pipeline " + b.state + " (" + b.config + "; supervisor pid " +
                    std::to_string(b.supervisor_pid) + ", up " + FormatDuration(b.uptime_s);
  if (b.state == "running") out += ", ETA " + FormatDuration(b.eta_s);
  out += b.bottleneck.empty() ? ")\n" : "; bottleneck: " + b.bottleneck + ")\n";
  if (!b.error.empty()) out += "error: " + b.error + "\n";
  char line[256];
  std::snprintf(line, sizeof(line), "%-11s %-8s %-27s %13s %8s %7s %5s %9s\n", "STAGE", "STATE",
                "PROGRESS", "DONE/TOTAL", "RATE/S", "ETA", "BUSY", "RSS");
  out += line;
  constexpr int kBar = 20;
  for (const auto& r : b.stages) {
    const StageMetrics& m = r.metrics;
    double frac = r.total > 0 ? std::min(1.0, double(m.items_out) / r.total) : 0;
    std::string bar = "[" + std::string(static_cast<size_t>(frac * kBar), '#');
    bar += std::string(kBar + 1 - bar.size(), '-') + "]";
    char pct[8];
    std::snprintf(pct, sizeof(pct), "%3d%%", static_cast<int>(frac * 100));
    std::string progress = r.total > 0 ? bar + " " + pct : "";
    std::string done = std::to_string(m.items_out) + "/" +
                       (r.total > 0 ? std::to_string(r.total) : std::string("?"));
    std::snprintf(line, sizeof(line), "%-11s %-8s %-27s %13s %8s %7s %4d%% %9s\n",
                  (r.stage + (r.bottleneck ? " *" : "")).c_str(), r.state.c_str(), progress.c_str(),
                  done.c_str(), Rate(r.rate_recent).c_str(), FormatDuration(r.eta_s).c_str(),
                  static_cast<int>(r.busy_share * 100 + 0.5),
                  r.has_metrics ? Bytes(m.rss_bytes).c_str() : "-");
    out += line;
  }
  return out;
}

}  // namespace nd
