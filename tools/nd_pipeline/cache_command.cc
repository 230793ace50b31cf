#include "tools/nd_pipeline/cache_command.h"

#include <cstdio>
#include <map>
#include <set>

#include "cache/activation_cache.h"
#include "cache/pipeline_keys.h"
#include "common/digest.h"

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

int Stats(const ActivationCache& cache) {
  auto stats = cache.Stats();
  if (!stats.ok()) return Fail(stats.status());
  std::printf("cache %s: %llu entries, %s used, map %s\n", cache.dir().c_str(),
              static_cast<unsigned long long>(stats->entries), Mb(stats->used_bytes).c_str(),
              Mb(stats->map_size_bytes).c_str());
  std::printf("%-8s %-10s %-28s %-11s %-5s %-18s %8s %10s\n", "kind", "layer", "model",
              "preprocess", "size", "shape", "entries", "bytes");
  for (const CacheGroupStats& g : stats->groups) {
    std::string kind = g.group.substr(0, 1) == "a"   ? "activ."
                       : g.group.substr(0, 1) == "t" ? "thresh."
                       : g.group.substr(0, 1) == "m" ? "manifest"
                                                     : g.group;
    std::string layer = "?", model = "?", pre = "", size = "", shape = "";
    if (g.manifest) {
      layer = g.manifest->layer;
      model = g.manifest->model_path;
      if (model.size() > 28) model = "…" + model.substr(model.size() - 27);
      pre = g.manifest->preprocess;
      size = std::to_string(g.manifest->input_size);
      shape = std::to_string(g.manifest->units) + "x" + std::to_string(g.manifest->h) + "x" +
              std::to_string(g.manifest->w) + " " + DTypeName(g.manifest->dtype);
    }
    std::printf("%-8s %-10s %-28s %-11s %-5s %-18s %8llu %10s\n", kind.c_str(), layer.c_str(),
                model.c_str(), pre.c_str(), size.c_str(), shape.c_str(),
                static_cast<unsigned long long>(g.entries),
                Mb(g.key_bytes + g.value_bytes).c_str());
  }
  return 0;
}

int Verify(const ActivationCache& cache) {
  auto report = cache.Verify();
  if (!report.ok()) return Fail(report.status());
  std::printf("checked %llu records: %llu bad; cleared %d stale reader slot(s)\n",
              static_cast<unsigned long long>(report->records_checked),
              static_cast<unsigned long long>(report->bad_records),
              report->stale_readers_cleared);
  for (const std::string& b : report->bad) std::printf("bad: %s\n", b.c_str());
  return report->bad_records ? 1 : 0;
}

int Gc(ActivationCache& cache, const std::vector<std::string>& args) {
  std::set<std::string> keep;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--keep-model" && i + 1 < args.size()) {
      auto digest = Sha256File(args[++i]);
      if (!digest.ok()) return Fail(digest.status());
      keep.insert(*digest);
    } else {
      return Fail(InvalidArgument("gc: unknown argument '" + args[i] +
                                  "'; usage: cache gc --keep-model FILE [--keep-model FILE ...]"));
    }
  }
  if (keep.empty()) return Fail(InvalidArgument("gc: name at least one --keep-model FILE"));
  auto stats = cache.Stats();
  if (!stats.ok()) return Fail(stats.status());
  uint64_t deleted = 0;
  for (const CacheGroupStats& g : stats->groups) {
    if (KeyLayerHash(g.group).empty()) continue;  // b/ blobs are not per model
    if (!g.manifest) continue;  // unknown owner: keep rather than guess
    if (keep.count(g.manifest->model_digest_hex)) continue;
    auto n = cache.DeletePrefix(g.group);
    if (!n.ok()) return Fail(n.status());
    deleted += *n;
  }
  std::printf("deleted %llu records of other models\n", static_cast<unsigned long long>(deleted));
  return 0;
}

}  // namespace

int RunCacheCommand(const PipelineConfig& config, const std::vector<std::string>& args) {
  if (args.empty()) return Fail(InvalidArgument("usage: nd-pipeline cache stats|verify|gc"));
  const std::string& sub = args[0];
  auto cache = ActivationCache::Open(CacheOptionsFor(config, /*read_only=*/sub != "gc"));
  if (!cache.ok()) return Fail(cache.status());
  if (sub == "stats") return Stats(*cache);
  if (sub == "verify") return Verify(*cache);
  if (sub == "gc") return Gc(*cache, args);
  return Fail(InvalidArgument("unknown cache command '" + sub + "' (stats, verify, gc)"));
}

}  // namespace nd
