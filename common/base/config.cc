#include "common/base/config.h"

#include <toml++/toml.h>

#include <cctype>
#include <filesystem>
#include <functional>
#include <sstream>

#include "common/base/config_internal.h"

namespace nd {
namespace config_internal {

namespace fs = std::filesystem;

std::string Quote(const std::string& s) {
  std::ostringstream out;
  out << toml::value<std::string>(s);
  return out.str();
}

std::string QuoteList(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + Quote(v[i]);
  return s + "]";
}

std::string Number(double d) {
  std::ostringstream out;
  out << toml::value<double>(d);
  return out.str();
}

Status ReadString(const toml::node& n, std::string* out) {
  auto v = n.value<std::string>();
  if (!v) return InvalidArgument("expected a string");
  *out = *v;
  return Status::Ok();
}

Status ReadPath(const toml::node& n, const Origin& origin, std::string* out, bool allow_empty) {
  ND_RETURN_IF_ERROR(ReadString(n, out));
  if (out->empty())
    return allow_empty ? Status::Ok() : InvalidArgument("expected a non-empty path");
  fs::path p(*out);
  if (p.is_relative()) p = origin.base / p;
  *out = p.lexically_normal().string();
  return Status::Ok();
}

Status ReadInt(const toml::node& n, int64_t lo, int64_t hi, int64_t* out) {
  auto v = n.value_exact<int64_t>();
  if (!v) return InvalidArgument("expected an integer");
  if (*v < lo || *v > hi)
    return InvalidArgument("must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                           "], got " + std::to_string(*v));
  *out = *v;
  return Status::Ok();
}

Status ReadBool(const toml::node& n, bool* out) {
  auto v = n.value_exact<bool>();
  if (!v) return InvalidArgument("expected true or false");
  *out = *v;
  return Status::Ok();
}

Status ReadDouble(const toml::node& n, double* out) {
  auto v = n.value<double>();  // accepts integers too
  if (!v) return InvalidArgument("expected a number");
  *out = *v;
  return Status::Ok();
}

Status ReadStringList(const toml::node& n, bool allow_scalar, std::vector<std::string>* out) {
  out->clear();
  if (auto s = n.value<std::string>(); s && allow_scalar) {
    out->push_back(*s);
    return Status::Ok();
  }
  const toml::array* arr = n.as_array();
  if (!arr) return InvalidArgument("expected an array of strings");
  for (const auto& item : *arr) {
    auto s = item.value<std::string>();
    if (!s) return InvalidArgument("expected an array of strings");
    if (s->empty()) return InvalidArgument("empty string in array");
    out->push_back(*s);
  }
  return Status::Ok();
}

Status OneOf(const std::string& value, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) {
    if (value == a) return Status::Ok();
    list += std::string(list.empty() ? "" : ", ") + "\"" + a + "\"";
  }
  return InvalidArgument("\"" + value + "\" is not one of " + list);
}

}  // namespace config_internal

namespace {

namespace fs = std::filesystem;
using namespace config_internal;

using Setter = std::function<Status(const toml::node&, const Origin&, PipelineConfig*)>;
using Printer = std::function<std::string(const PipelineConfig&)>;

struct Key {
  const char* section;
  const char* name;
  Setter set;
  Printer print;
};

bool IsDevice(const std::string& d, bool allow_auto) {
  if (d == "cpu" || d == "cuda" || (allow_auto && d == "auto")) return true;
  if (d.rfind("cuda:", 0) != 0 || d.size() == 5) return false;
  for (size_t i = 5; i < d.size(); ++i)
    if (d[i] < '0' || d[i] > '9') return false;
  return true;
}

// [dataset] and [model]: what is dissected.
std::vector<Key> InputKeys() {
  return {
      {"dataset", "path",
       [](const toml::node& n, const Origin& o, PipelineConfig* c) {
         return ReadPath(n, o, &c->dataset.path);
       },
       [](const PipelineConfig& c) { return Quote(c.dataset.path); }},
      {"dataset", "categories",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         return ReadStringList(n, false, &c->dataset.categories);
       },
       [](const PipelineConfig& c) { return QuoteList(c.dataset.categories); }},
      {"dataset", "on_bad_row",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->dataset.on_bad_row));
         return OneOf(c->dataset.on_bad_row, {"skip", "fail"});
       },
       [](const PipelineConfig& c) { return Quote(c.dataset.on_bad_row); }},
      {"model", "path",
       [](const toml::node& n, const Origin& o, PipelineConfig* c) {
         return ReadPath(n, o, &c->model.path, /*allow_empty=*/true);  // "" with [[models]]
       },
       [](const PipelineConfig& c) { return Quote(c.model.path); }},
      {"model", "layers",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadStringList(n, true, &c->model.layers));
         if (c->model.layers.empty()) return InvalidArgument("at least one layer is required");
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return QuoteList(c.model.layers); }},
      {"model", "input_size",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 8, 4096, &v));
         c->model.input_size = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.model.input_size); }},
      {"model", "preprocess",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->model.preprocess));
         return OneOf(c->model.preprocess, {"torchvision", "netdissect"});
       },
       [](const PipelineConfig& c) { return Quote(c.model.preprocess); }},
      {"model", "device",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadStringList(n, true, &c->model.devices));
         if (c->model.devices.empty()) return InvalidArgument("at least one device is required");
         for (const auto& d : c->model.devices)
           if (!IsDevice(d, true))
             return InvalidArgument("\"" + d +
                                    "\" is not \"auto\", \"cpu\", \"cuda\" or \"cuda:N\"");
         return Status::Ok();
       },
       [](const PipelineConfig& c) {
         return c.model.devices.size() == 1 ? Quote(c.model.devices[0])
                                            : QuoteList(c.model.devices);
       }},
      {"model", "batch_size",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 1, 65536, &v));
         c->model.batch_size = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.model.batch_size); }},
      {"model", "precision",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->model.precision));
         return OneOf(c->model.precision, {"fp32", "fp16", "bf16"});
       },
       [](const PipelineConfig& c) { return Quote(c.model.precision); }},
      {"model", "memory_format",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->model.memory_format));
         return OneOf(c->model.memory_format, {"auto", "contiguous", "channels_last"});
       },
       [](const PipelineConfig& c) { return Quote(c.model.memory_format); }},
  };
}

// [decode], [threshold], [score], [explain], [stats]: how it is computed.
std::vector<Key> MethodKeys() {
  return {
      {"decode", "workers",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 256, &v));
         c->decode.workers = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.decode.workers); }},
      {"decode", "rehash",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         return ReadBool(n, &c->decode.rehash);
       },
       [](const PipelineConfig& c) { return std::string(c.decode.rehash ? "true" : "false"); }},
      {"threshold", "quantile",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         std::vector<double> qs;
         if (const toml::array* arr = n.as_array()) {
           for (const auto& item : *arr) {
             double q;
             ND_RETURN_IF_ERROR(ReadDouble(item, &q));
             qs.push_back(q);
           }
         } else {
           double q;
           ND_RETURN_IF_ERROR(ReadDouble(n, &q));
           qs.push_back(q);
         }
         if (qs.empty()) return InvalidArgument("at least one quantile is required");
         for (double q : qs)
           if (!(q > 0 && q <= 0.5))
             return InvalidArgument("quantile " + Number(q) + " is not in (0, 0.5]");
         c->threshold.quantiles = qs;
         return Status::Ok();
       },
       [](const PipelineConfig& c) {
         if (c.threshold.quantiles.size() == 1) return Number(c.threshold.quantiles[0]);
         std::string s = "[";
         for (size_t i = 0; i < c.threshold.quantiles.size(); ++i)
           s += (i ? ", " : "") + Number(c.threshold.quantiles[i]);
         return s + "]";
       }},
      {"threshold", "tail_quantile",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadDouble(n, &c->threshold.tail_quantile));
         if (!(c->threshold.tail_quantile >= 0 && c->threshold.tail_quantile <= 0.5))
           return InvalidArgument("not in [0, 0.5]");
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return Number(c.threshold.tail_quantile); }},
      {"score", "iou_threshold",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadDouble(n, &c->score.iou_threshold));
         if (!(c->score.iou_threshold >= 0 && c->score.iou_threshold < 1))
           return InvalidArgument("must be in [0, 1)");
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return Number(c.score.iou_threshold); }},
      {"score", "union",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->score.union_rule));
         return OneOf(c->score.union_rule, {"paper", "lite"});
       },
       [](const PipelineConfig& c) { return Quote(c.score.union_rule); }},
      {"score", "workers",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 256, &v));
         c->score.workers = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.score.workers); }},
      {"score", "device",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->score.device));
         if (!IsDevice(c->score.device, false))
           return InvalidArgument("\"" + c->score.device +
                                  "\" is not \"cpu\", \"cuda\" or \"cuda:N\"");
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return Quote(c.score.device); }},
      {"explain", "length",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 10, &v));
         c->explain.length = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.explain.length); }},
      {"explain", "beam",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 1, 1000, &v));
         c->explain.beam = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.explain.beam); }},
      {"stats", "bootstrap",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 1000000, &v));
         c->stats.bootstrap = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.stats.bootstrap); }},
      {"stats", "permutations",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 1000000, &v));
         c->stats.permutations = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.stats.permutations); }},
      {"stats", "seed",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         return ReadInt(n, 0, INT64_MAX, &c->stats.seed);
       },
       [](const PipelineConfig& c) { return std::to_string(c.stats.seed); }},
      {"stats", "max_null",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         auto v = n.value_exact<bool>();
         if (!v) return InvalidArgument("expected true or false");
         c->stats.max_null = *v;
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::string(c.stats.max_null ? "true" : "false"); }},
  };
}

// [cache], [output], [run]: where results go and how the stages run.
std::vector<Key> RunKeys() {
  return {
      {"cache", "dir",
       [](const toml::node& n, const Origin& o, PipelineConfig* c) {
         return ReadPath(n, o, &c->cache.dir);
       },
       [](const PipelineConfig& c) { return Quote(c.cache.dir); }},
      {"cache", "dtype",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->cache.dtype));
         return OneOf(c->cache.dtype, {"float16", "float32"});
       },
       [](const PipelineConfig& c) { return Quote(c.cache.dtype); }},
      {"cache", "map_size_mb",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         return ReadInt(n, 1, int64_t{1} << 30, &c->cache.map_size_mb);
       },
       [](const PipelineConfig& c) { return std::to_string(c.cache.map_size_mb); }},
      {"output", "dir",
       [](const toml::node& n, const Origin& o, PipelineConfig* c) {
         return ReadPath(n, o, &c->output.dir);
       },
       [](const PipelineConfig& c) { return Quote(c.output.dir); }},
      {"run", "dir",
       [](const toml::node& n, const Origin& o, PipelineConfig* c) {
         return ReadPath(n, o, &c->run.dir, /*allow_empty=*/true);
       },
       [](const PipelineConfig& c) { return Quote(c.run.dir); }},
      {"run", "transport",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->run.transport));
         return OneOf(c->run.transport, {"ipc", "tcp"});
       },
       [](const PipelineConfig& c) { return Quote(c.run.transport); }},
      {"run", "curve",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->run.curve));
         return OneOf(c->run.curve, {"auto", "on", "off"});
       },
       [](const PipelineConfig& c) { return Quote(c.run.curve); }},
      {"run", "host",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->run.host));
         if (c->run.host.empty()) return InvalidArgument("expected a host address");
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return Quote(c.run.host); }},
      {"run", "base_port",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 1024, 65000, &v));
         c->run.base_port = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.run.base_port); }},
      {"run", "timeout_s",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 1, 86400, &v));
         c->run.timeout_s = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.run.timeout_s); }},
      {"run", "http_port",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 65535, &v));
         c->run.http_port = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.run.http_port); }},
      {"run", "heartbeat_timeout_s",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 2, 86400, &v));
         c->run.heartbeat_timeout_s = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.run.heartbeat_timeout_s); }},
      {"run", "max_restarts",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 100, &v));
         c->run.max_restarts = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.run.max_restarts); }},
      {"run", "model_digest",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->run.model_digest));
         const std::string& d = c->run.model_digest;
         const bool hex = d.size() == 64 && d.find_first_not_of("0123456789abcdef") == d.npos;
         if (!d.empty() && !hex) return InvalidArgument("expected 64 lowercase hex digits or \"\"");
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return Quote(c.run.model_digest); }},
      {"run", "backend",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->run.backend));
         return OneOf(c->run.backend, {"local", "slurm"});
       },
       [](const PipelineConfig& c) { return Quote(c.run.backend); }},
  };
}

// [slurm] and [shard]: a sharded run on a Slurm cluster.
std::vector<Key> ClusterKeys() {
  return {
      {"slurm", "partition",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         return ReadString(n, &c->slurm.partition);
       },
       [](const PipelineConfig& c) { return Quote(c.slurm.partition); }},
      {"slurm", "shards",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 1, 10000, &v));
         c->slurm.shards = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.slurm.shards); }},
      {"slurm", "gpus_per_task",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 64, &v));
         c->slurm.gpus_per_task = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.slurm.gpus_per_task); }},
      {"slurm", "time_limit",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         return ReadString(n, &c->slurm.time_limit);
       },
       [](const PipelineConfig& c) { return Quote(c.slurm.time_limit); }},
      {"slurm", "sbatch_flags",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         return ReadStringList(n, false, &c->slurm.sbatch_flags);
       },
       [](const PipelineConfig& c) { return QuoteList(c.slurm.sbatch_flags); }},
      {"slurm", "dir",
       [](const toml::node& n, const Origin& o, PipelineConfig* c) {
         return ReadPath(n, o, &c->slurm.dir, /*allow_empty=*/true);
       },
       [](const PipelineConfig& c) { return Quote(c.slurm.dir); }},
      {"slurm", "requeue_exit",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 255, &v));
         c->slurm.requeue_exit = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.slurm.requeue_exit); }},
      {"shard", "index",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 9999, &v));
         c->shard.index = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.shard.index); }},
      {"shard", "count",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 10000, &v));
         c->shard.count = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.shard.count); }},
      {"shard", "phase",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->shard.phase));
         return OneOf(c->shard.phase, {"forward", "score"});
       },
       [](const PipelineConfig& c) { return Quote(c.shard.phase); }},
      {"shard", "dir",
       [](const toml::node& n, const Origin& o, PipelineConfig* c) {
         return ReadPath(n, o, &c->shard.dir, /*allow_empty=*/true);
       },
       [](const PipelineConfig& c) { return Quote(c.shard.dir); }},
  };
}

// [rate]: the human-evaluation server and its protocols (tools/rate).
std::vector<Key> RateKeys() {
  return {
      {"rate", "host",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->rate.host));
         if (c->rate.host.empty()) return InvalidArgument("expected an IP address");
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return Quote(c.rate.host); }},
      {"rate", "port",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 65535, &v));
         c->rate.port = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.rate.port); }},
      {"rate", "answers",
       [](const toml::node& n, const Origin& o, PipelineConfig* c) {
         return ReadPath(n, o, &c->rate.answers, /*allow_empty=*/true);
       },
       [](const PipelineConfig& c) { return Quote(c.rate.answers); }},
      {"rate", "raters_per_unit",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 1, 1000, &v));
         c->rate.raters_per_unit = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.rate.raters_per_unit); }},
      {"rate", "names_per_unit",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 1, 1000, &v));
         c->rate.names_per_unit = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.rate.names_per_unit); }},
      {"rate", "detectors_only",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         return ReadBool(n, &c->rate.detectors_only);
       },
       [](const PipelineConfig& c) {
         return std::string(c.rate.detectors_only ? "true" : "false");
       }},
      {"rate", "max_units",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 1000000, &v));
         c->rate.max_units = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.rate.max_units); }},
      {"rate", "seed",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         return ReadInt(n, 0, INT64_MAX, &c->rate.seed);
       },
       [](const PipelineConfig& c) { return std::to_string(c.rate.seed); }},
      {"rate", "catch_every",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 0, 1000, &v));
         if (v == 1)
           return InvalidArgument("1 would make every trial a catch trial; use 0 or >= 2");
         c->rate.catch_every = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.rate.catch_every); }},
      {"rate", "min_catch_accuracy",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadDouble(n, &c->rate.min_catch_accuracy));
         if (!(c->rate.min_catch_accuracy >= 0 && c->rate.min_catch_accuracy <= 1))
           return InvalidArgument("must be in [0, 1]");
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return Number(c.rate.min_catch_accuracy); }},
      {"rate", "token",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         ND_RETURN_IF_ERROR(ReadString(n, &c->rate.token));
         for (char ch : c->rate.token)
           if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_')
             return InvalidArgument("only letters, digits, '-' and '_' (it travels in URLs)");
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return Quote(c.rate.token); }},
      {"rate", "top_images",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 1, 100, &v));
         c->rate.top_images = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.rate.top_images); }},
      {"rate", "tile_size",
       [](const toml::node& n, const Origin&, PipelineConfig* c) {
         int64_t v;
         ND_RETURN_IF_ERROR(ReadInt(n, 16, 512, &v));
         c->rate.tile_size = static_cast<int>(v);
         return Status::Ok();
       },
       [](const PipelineConfig& c) { return std::to_string(c.rate.tile_size); }},
  };
}

const std::vector<Key>& Keys() {
  static const std::vector<Key> keys = [] {
    std::vector<Key> all = InputKeys();
    for (auto part : {MethodKeys(), RunKeys(), RateKeys(), ClusterKeys()})
      all.insert(all.end(), part.begin(), part.end());
    return all;
  }();
  return keys;
}

const Key* FindKey(const std::string& section, const std::string& name) {
  for (const Key& k : Keys())
    if (section == k.section && name == k.name) return &k;
  return nullptr;
}

bool IsSection(const std::string& section) {
  for (const Key& k : Keys())
    if (section == k.section) return true;
  return false;
}

std::string KeysOf(const std::string& section) {
  std::string s;
  for (const Key& k : Keys())
    if (section == k.section) s += std::string(s.empty() ? "" : ", ") + k.name;
  return s;
}

std::string Where(const Origin& o, const std::string& section, const std::string& key) {
  return o.name + ": [" + section + "]" + (key.empty() ? "" : "." + key);
}

Status ApplyTable(const toml::table& root, const Origin& origin, PipelineConfig* config) {
  for (const auto& [section_key, section_node] : root) {
    std::string section(section_key.str());
    if (section == "view") {  // [[view]]: an array of tables (config_tables.cc)
      ND_RETURN_IF_ERROR(ApplyViewTables(section_node, origin, config));
      continue;
    }
    if (section == "models") {  // [[models]]: an array of tables (config_tables.cc)
      ND_RETURN_IF_ERROR(ApplyModelTables(section_node, origin, config));
      continue;
    }
    const toml::table* table = section_node.as_table();
    if (!IsSection(section)) {
      std::string known;
      for (const Key& k : Keys())
        if (known.find(k.section) == std::string::npos)
          known += std::string(known.empty() ? "" : ", ") + k.section;
      return InvalidArgument(Where(origin, section, "") + ": unknown section; sections are " +
                             known + " and the tables [[models]], [[view]]");
    }
    if (!table) return InvalidArgument(Where(origin, section, "") + ": expected a table");
    for (const auto& [key, node] : *table) {
      std::string name(key.str());
      const Key* spec = FindKey(section, name);
      if (!spec)
        return InvalidArgument(Where(origin, section, name) + ": unknown key; keys of [" + section +
                               "] are " + KeysOf(section));
      Status s = spec->set(node, origin, config);
      if (!s.ok()) return InvalidArgument(Where(origin, section, name) + ": " + s.message());
    }
  }
  return Status::Ok();
}

Status ApplyOverride(const std::string& item, PipelineConfig* config) {
  Origin origin{"--set", fs::current_path()};
  size_t eq = item.find('=');
  size_t dot = item.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq)
    return InvalidArgument("--set " + item + ": expected section.key=value");
  std::string section = item.substr(0, dot);
  std::string key = item.substr(dot + 1, eq - dot - 1);
  std::string value = item.substr(eq + 1);
  if (!IsSection(section)) return InvalidArgument(Where(origin, section, "") + ": unknown section");
  const Key* spec = FindKey(section, key);
  if (!spec)
    return InvalidArgument(Where(origin, section, key) + ": unknown key; keys of [" + section +
                           "] are " + KeysOf(section));
  // The value is TOML when it parses as one ("0.01", "[1, 2]", "\"x\""), else a bare string.
  toml::table parsed;
  try {
    parsed = toml::parse("v = " + value);
  } catch (const toml::parse_error&) {
    parsed = toml::table{{"v", value}};
  }
  Status s = spec->set(*parsed.get("v"), origin, config);
  if (!s.ok()) return InvalidArgument(Where(origin, section, key) + ": " + s.message());
  return Status::Ok();
}

Status CheckRequired(const PipelineConfig& c, const std::string& name) {
  Origin o{name, {}};
  if (c.dataset.path.empty()) return InvalidArgument(Where(o, "dataset", "path") + ": required");
  if (c.model.path.empty() && c.models.empty())
    return InvalidArgument(Where(o, "model", "path") + ": required (or [[models]] tables)");
  if (!c.model.path.empty() && !c.models.empty())
    return InvalidArgument(Where(o, "model", "path") +
                           ": give either [model].path or [[models]] tables, not both");
  if (c.cache.dir.empty()) return InvalidArgument(Where(o, "cache", "dir") + ": required");
  if (c.output.dir.empty()) return InvalidArgument(Where(o, "output", "dir") + ": required");
  for (size_t i = 0; i < c.model.layers.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (c.model.layers[i] == c.model.layers[j])
        return InvalidArgument(Where(o, "model", "layers") + ": \"" + c.model.layers[i] +
                               "\" is listed twice");
  ND_RETURN_IF_ERROR(CheckModels(c, name));
  ND_RETURN_IF_ERROR(CheckViews(c, name));
  if (c.run.curve == "on" && c.run.transport != "tcp")
    return InvalidArgument(Where(o, "run", "curve") +
                           ": \"on\" needs run.transport = \"tcp\" (ipc sockets are local files)");
  if (c.shard.count > 0) {
    if (c.shard.index >= c.shard.count)
      return InvalidArgument(Where(o, "shard", "index") + ": " + std::to_string(c.shard.index) +
                             " is not below shard.count " + std::to_string(c.shard.count));
    if (c.shard.dir.empty()) return InvalidArgument(Where(o, "shard", "dir") + ": required");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<PipelineConfig> LoadConfig(const std::string& path,
                                    const std::vector<std::string>& overrides) {
  PipelineConfig config;
  std::string name = "defaults";
  if (!path.empty()) {
    name = fs::path(path).filename().string();
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) return NotFound(path + ": no such config file");
    toml::table root;
    try {
      root = toml::parse_file(path);
    } catch (const toml::parse_error& e) {
      const auto& where = e.source().begin;
      return InvalidArgument(name + ":" + std::to_string(where.line) + ":" +
                             std::to_string(where.column) + ": " + std::string(e.description()));
    }
    Origin origin{name, fs::absolute(path).parent_path()};
    ND_RETURN_IF_ERROR(ApplyTable(root, origin, &config));
    config.source = fs::absolute(path).lexically_normal().string();
  }
  for (const std::string& item : overrides) ND_RETURN_IF_ERROR(ApplyOverride(item, &config));
  ND_RETURN_IF_ERROR(CheckRequired(config, name));
  return config;
}

std::string ConfigToToml(const PipelineConfig& config) {
  std::string out;
  std::string section;
  for (const Key& k : Keys()) {
    if (section != k.section) {
      section = k.section;
      out += (out.empty() ? "[" : "\n[") + section + "]\n";
    }
    out += std::string(k.name) + " = " + k.print(config) + "\n";
  }
  return out + PrintModelTables(config) + PrintViewTables(config);
}

std::string RateAnswersPath(const PipelineConfig& config) {
  if (!config.rate.answers.empty()) return config.rate.answers;
  return (fs::path(config.output.dir) / "rate" / "answers.jsonl").string();
}

std::string SlurmDirectory(const PipelineConfig& config) {
  if (!config.slurm.dir.empty()) return config.slurm.dir;
  return (fs::path(config.output.dir) / ".slurm").string();
}

RowRange ShardRows(size_t rows, int index, int count) {
  auto at = [&](int k) {
    return static_cast<size_t>(static_cast<unsigned __int128>(rows) * static_cast<unsigned>(k) /
                               static_cast<unsigned>(count));
  };
  return RowRange{at(index), at(index + 1)};
}

std::string RunDirectory(const PipelineConfig& config) {
  if (!config.run.dir.empty()) return config.run.dir;
  return (fs::path(config.output.dir) / ".run").string();
}

}  // namespace nd
