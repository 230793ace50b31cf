#include "tools/nd_pipeline/cache_command.h"

#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include "cache/activation_cache.h"
#include "cache/pipeline_keys.h"
#include "common/base/digest.h"

namespace nd {
namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "nd-pipeline: cache: %s\n", s.message().c_str());
  return 1;
}

std::string Mb(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f MB", bytes / 1048576.0);
  return buf;
}

std::string FormatTime(int64_t unix_s) {
  if (unix_s <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%MZ", &tm);
  return buf;
}

int Stats(const ActivationCache& cache) {
  auto stats = cache.Stats();
  if (!stats.ok()) return Fail(stats.status());
  std::printf("cache %s: %llu entries, %s used, map %s\n", cache.dir().c_str(),
              static_cast<unsigned long long>(stats->entries), Mb(stats->used_bytes).c_str(),
              Mb(stats->map_size_bytes).c_str());
  std::printf("%-8s %-10s %-28s %-11s %-5s %-18s %8s %10s  %s\n", "kind", "layer", "model",
              "preprocess", "size", "shape", "entries", "bytes", "last used");
  for (const CacheGroupStats& g : stats->groups) {
    std::string kind = g.group.substr(0, 1) == "a"   ? "activ."
                       : g.group.substr(0, 1) == "t" ? "thresh."
                       : g.group.substr(0, 1) == "m" ? "manifest"
                                                     : g.group;
    std::string layer = "?", model = "?", pre = "", size = "", shape = "", used = "";
    if (g.manifest) {
      layer = g.manifest->layer;
      model = g.manifest->model_path;
      if (model.size() > 28) model = "…" + model.substr(model.size() - 27);
      pre = g.manifest->preprocess;
      size = std::to_string(g.manifest->input_size);
      shape = std::to_string(g.manifest->units) + "x" + std::to_string(g.manifest->h) + "x" +
              std::to_string(g.manifest->w) + " " + DTypeName(g.manifest->dtype);
      used = FormatTime(g.manifest->last_used_unix);
    }
    std::printf("%-8s %-10s %-28s %-11s %-5s %-18s %8llu %10s  %s\n", kind.c_str(), layer.c_str(),
                model.c_str(), pre.c_str(), size.c_str(), shape.c_str(),
                static_cast<unsigned long long>(g.entries), Mb(g.key_bytes + g.value_bytes).c_str(),
                used.c_str());
  }
  return 0;
}

int Verify(const ActivationCache& cache) {
  auto report = cache.Verify();
  if (!report.ok()) return Fail(report.status());
  std::printf("checked %llu records: %llu bad; cleared %d stale reader slot(s)\n",
              static_cast<unsigned long long>(report->records_checked),
              static_cast<unsigned long long>(report->bad_records), report->stale_readers_cleared);
  for (const std::string& b : report->bad) std::printf("bad: %s\n", b.c_str());
  return report->bad_records ? 1 : 0;
}

// "30d", "12h", "90m", "3600s" or plain seconds → seconds; -1 when malformed.
int64_t ParseAge(const std::string& text) {
  if (text.empty()) return -1;
  int64_t unit = 1;
  std::string digits = text;
  switch (text.back()) {
    case 's':
      unit = 1;
      digits.pop_back();
      break;
    case 'm':
      unit = 60;
      digits.pop_back();
      break;
    case 'h':
      unit = 3600;
      digits.pop_back();
      break;
    case 'd':
      unit = 86400;
      digits.pop_back();
      break;
    default:
      break;
  }
  if (digits.empty() || digits.size() > 9) return -1;
  int64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v * unit;
}

constexpr const char* kGcUsage =
    "usage: cache gc [--keep-model FILE]... [--older-than AGE]  (AGE: 30d, 12h, 90m, 3600s)";

int Gc(ActivationCache& cache, const CacheCommandArgs& args) {
  std::set<std::string> keep;
  for (const std::string& model : args.keep_models) {
    auto digest = Sha256File(model);
    if (!digest.ok()) return Fail(digest.status());
    keep.insert(*digest);
  }
  int64_t max_age_s = -1;
  if (!args.older_than.empty()) {
    max_age_s = ParseAge(args.older_than);
    if (max_age_s < 0) {
      return Fail(
          InvalidArgument("gc: --older-than '" + args.older_than + "' is not an age; " + kGcUsage));
    }
  }
  if (keep.empty() && max_age_s < 0)
    return Fail(InvalidArgument("gc: name --keep-model FILE or --older-than AGE; " +
                                std::string(kGcUsage)));
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  auto stats = cache.Stats();
  if (!stats.ok()) return Fail(stats.status());
  uint64_t deleted = 0, unknown_owner = 0, never_stamped = 0;
  std::set<std::string> deleted_layers;
  for (const CacheGroupStats& g : stats->groups) {
    if (KeyLayerHash(g.group).empty()) continue;  // b/ blobs are not per layer
    if (!g.manifest) {                            // unknown owner and age: keep rather than guess
      ++unknown_owner;
      continue;
    }
    // A group goes when any rule given rejects it.
    bool other_model = !keep.empty() && !keep.count(g.manifest->model_digest_hex);
    bool too_old = false;
    if (max_age_s >= 0) {
      if (g.manifest->last_used_unix == 0) {
        if (g.group[0] == 'm') ++never_stamped;
      } else {
        too_old = now - g.manifest->last_used_unix > max_age_s;
      }
    }
    if (!other_model && !too_old) continue;
    auto n = cache.DeletePrefix(g.group);
    if (!n.ok()) return Fail(n.status());
    deleted += *n;
    deleted_layers.insert(g.manifest->layer + " of model " +
                          g.manifest->model_digest_hex.substr(0, 12));
  }
  std::printf("deleted %llu records of %zu layer(s)\n", static_cast<unsigned long long>(deleted),
              deleted_layers.size());
  for (const std::string& l : deleted_layers) std::printf("deleted: %s\n", l.c_str());
  if (unknown_owner)
    std::printf("kept %llu group(s) without a layer manifest\n",
                static_cast<unsigned long long>(unknown_owner));
  if (never_stamped)
    std::printf("kept %llu layer(s) with no recorded use (cached before last-use stamps)\n",
                static_cast<unsigned long long>(never_stamped));
  return 0;
}

}  // namespace

int RunCacheCommand(const PipelineConfig& config, const CacheCommandArgs& args) {
  const std::string& sub = args.subcommand;
  if (sub != "gc" && (!args.keep_models.empty() || !args.older_than.empty())) {
    return Fail(InvalidArgument("cache " + sub + ": --keep-model and --older-than are gc's"));
  }
  auto cache = ActivationCache::Open(CacheOptionsFor(config, /*read_only=*/sub != "gc"));
  if (!cache.ok()) return Fail(cache.status());
  if (sub == "stats") return Stats(*cache);
  if (sub == "verify") return Verify(*cache);
  if (sub == "gc") return Gc(*cache, args);
  return Fail(InvalidArgument("unknown cache command '" + sub + "' (stats, verify, gc)"));
}

}  // namespace nd
