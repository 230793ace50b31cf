#include "common/runtime/run_plan.h"

#include <toml++/toml.h>

#include <filesystem>
#include <sstream>

#include "common/base/digest.h"
#include "common/base/text_format.h"

namespace nd {
namespace {

// TOML basic strings and JSON strings escape alike for what a plan holds (paths, hex, names).
std::string Quoted(const std::string& s) { return JsonString(s); }

Status KeyError(const std::string& path, const std::string& key, const std::string& why) {
  return InvalidArgument(path + ": " + key + ": " + why);
}

Status ReadStringKey(const toml::table& t, const std::string& path, const std::string& key,
                     std::string* out) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return KeyError(path, key, "missing");
  const auto* s = n->as_string();
  if (s == nullptr) return KeyError(path, key, "not a string");
  *out = s->get();
  return Status::Ok();
}

Status CheckKeys(const toml::table& t, const std::string& path, const std::string& where,
                 const std::vector<std::string>& known) {
  for (const auto& [k, v] : t) {
    const std::string key(k.str());
    bool ok = false;
    for (const std::string& name : known) ok = ok || key == name;
    if (!ok) return KeyError(path, where + key, "unknown key");
  }
  return Status::Ok();
}

}  // namespace

std::string RunPlanPath(const PipelineConfig& config) {
  return (std::filesystem::path(RunDirectory(config)) / "plan.toml").string();
}

std::string FormatRunPlan(const RunPlan& plan) {
  std::ostringstream o;
  o << "# written by nd-pipeline up: the facts of this run, checked by every stage "
       "(common/runtime/run_plan.h)\n"
    << "model_digest = " << Quoted(plan.model_digest) << "\n"
    << "images = " << plan.images << "\n"
    << "index_digest = " << Quoted(plan.index_digest) << "\n"
    << "curve_keys = " << Quoted(plan.curve_keys) << "\n"
    << "image_set = " << Quoted(plan.image_set) << "\n\n"
    << "[endpoints]\n"
    << "events = " << Quoted(plan.endpoints.events) << "\n"
    << "images = " << Quoted(plan.endpoints.images) << "\n"
    << "ready = " << Quoted(plan.endpoints.ready) << "\n"
    << "scored = " << Quoted(plan.endpoints.scored) << "\n"
    << "metrics = " << Quoted(plan.endpoints.metrics) << "\n";
  for (const PlannedLayer& l : plan.layers) {
    o << "\n[[layers]]\nname = " << Quoted(l.name) << "\nhash = " << Quoted(l.hash) << "\n";
  }
  return o.str();
}

StatusOr<RunPlan> ReadRunPlan(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFound(path + ": no run plan");
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return InvalidArgument(path + ":" + std::to_string(e.source().begin.line) + ": " +
                           std::string(e.description()));
  }
  ND_RETURN_IF_ERROR(CheckKeys(t, path, "",
                               {"model_digest", "images", "index_digest", "curve_keys", "image_set",
                                "endpoints", "layers"}));
  RunPlan plan;
  ND_RETURN_IF_ERROR(ReadStringKey(t, path, "model_digest", &plan.model_digest));
  ND_RETURN_IF_ERROR(ReadStringKey(t, path, "index_digest", &plan.index_digest));
  ND_RETURN_IF_ERROR(ReadStringKey(t, path, "curve_keys", &plan.curve_keys));
  ND_RETURN_IF_ERROR(ReadStringKey(t, path, "image_set", &plan.image_set));
  const toml::node* images = t.get("images");
  if (images == nullptr) return KeyError(path, "images", "missing");
  const auto* n = images->as_integer();
  if (n == nullptr || n->get() < 0) return KeyError(path, "images", "not a count");
  plan.images = static_cast<uint64_t>(n->get());
  const toml::table* e = t["endpoints"].as_table();
  if (e == nullptr) return KeyError(path, "endpoints", "missing or not a table");
  ND_RETURN_IF_ERROR(
      CheckKeys(*e, path, "endpoints.", {"events", "images", "ready", "scored", "metrics"}));
  ND_RETURN_IF_ERROR(ReadStringKey(*e, path, "events", &plan.endpoints.events));
  ND_RETURN_IF_ERROR(ReadStringKey(*e, path, "images", &plan.endpoints.images));
  ND_RETURN_IF_ERROR(ReadStringKey(*e, path, "ready", &plan.endpoints.ready));
  ND_RETURN_IF_ERROR(ReadStringKey(*e, path, "scored", &plan.endpoints.scored));
  ND_RETURN_IF_ERROR(ReadStringKey(*e, path, "metrics", &plan.endpoints.metrics));
  const toml::array* layers = t["layers"].as_array();
  if (layers == nullptr || layers->empty()) return KeyError(path, "layers", "missing or empty");
  for (const toml::node& node : *layers) {
    const toml::table* l = node.as_table();
    if (l == nullptr) return KeyError(path, "layers", "not a table");
    ND_RETURN_IF_ERROR(CheckKeys(*l, path, "layers.", {"name", "hash"}));
    PlannedLayer layer;
    ND_RETURN_IF_ERROR(ReadStringKey(*l, path, "name", &layer.name));
    ND_RETURN_IF_ERROR(ReadStringKey(*l, path, "hash", &layer.hash));
    plan.layers.push_back(std::move(layer));
  }
  return plan;
}

Status CheckDatasetAgainstPlan(const RunPlan& plan, const std::string& index_path,
                               uint64_t images) {
  const std::string again = "; `nd-pipeline up` again plans a new run";
  ND_ASSIGN_OR_RETURN(const std::string digest, Sha256File(index_path));
  if (digest != plan.index_digest) {
    return FailedPrecondition(index_path + " changed since the run started (SHA-256 " +
                              plan.index_digest.substr(0, 12) + "… planned, " +
                              digest.substr(0, 12) + "… now)" + again);
  }
  if (images != plan.images) {
    return FailedPrecondition(index_path + ": " + std::to_string(plan.images) +
                              " images planned, " + std::to_string(images) + " now" + again);
  }
  return Status::Ok();
}

}  // namespace nd
