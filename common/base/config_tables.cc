// The arrays of tables of pipeline.toml: [[view]] (config.h ViewConfig) and [[models]]
// (config.h ModelEntry).
#include <charconv>
#include <set>

#include "common/base/config.h"
#include "common/base/config_internal.h"

namespace nd {

std::string ViewResultName(const ViewConfig& view, double alpha) {
  if (view.alpha.size() <= 1) return view.name;
  char buffer[64];
  auto end = std::to_chars(buffer, buffer + sizeof buffer, alpha).ptr;
  return view.name + "-a" + std::string(buffer, end);
}

std::vector<ModelEntry> ConfiguredModels(const PipelineConfig& config) {
  if (!config.models.empty()) return config.models;
  ModelEntry one;
  one.path = config.model.path;
  one.digest = config.run.model_digest;
  return {one};
}

std::string ModelResultPrefix(const ModelEntry& model) {
  return model.name.empty() ? "" : model.name + "/";
}

std::vector<std::string> ResultSetNames(const PipelineConfig& config) {
  std::vector<std::string> names;
  for (const ModelEntry& model : ConfiguredModels(config)) {
    const std::string prefix = ModelResultPrefix(model);
    for (const std::string& layer : config.model.layers) names.push_back(prefix + layer);
    for (const ViewConfig& view : config.views)
      for (double alpha : view.alpha) names.push_back(prefix + ViewResultName(view, alpha));
  }
  return names;
}

namespace config_internal {
namespace {

constexpr const char* kViewKeys = "name, layer, basis, seed, alpha, path";

// A result folder name: one path component that is not hidden and not the report's.
Status CheckResultName(const std::string& name) {
  if (name.empty()) return InvalidArgument("must not be empty");
  if (name.find('/') != std::string::npos || name.find('\\') != std::string::npos)
    return InvalidArgument("\"" + name + "\" must be one folder name (no '/')");
  if (name[0] == '.') return InvalidArgument("\"" + name + "\" must not start with '.'");
  if (name == "report" || name == "rate")
    return InvalidArgument("\"" + name + "\" is reserved (the report's and rating's folders)");
  return Status::Ok();
}

Status ReadAlphas(const toml::node& n, std::vector<double>* out) {
  out->clear();
  if (const toml::array* arr = n.as_array()) {
    for (const auto& item : *arr) {
      double a;
      ND_RETURN_IF_ERROR(ReadDouble(item, &a));
      out->push_back(a);
    }
  } else {
    double a;
    ND_RETURN_IF_ERROR(ReadDouble(n, &a));
    out->push_back(a);
  }
  if (out->empty()) return InvalidArgument("at least one alpha is required");
  std::set<double> seen;
  for (double a : *out) {
    if (!(a >= 0 && a <= 1)) return InvalidArgument("must be in [0, 1], got " + Number(a));
    if (!seen.insert(a).second) return InvalidArgument(Number(a) + " is listed twice");
  }
  return Status::Ok();
}

Status ApplyViewKey(const std::string& key, const toml::node& n, const Origin& origin,
                    ViewConfig* v) {
  if (key == "name") return ReadString(n, &v->name);
  if (key == "layer") return ReadString(n, &v->layer);
  if (key == "basis") {
    ND_RETURN_IF_ERROR(ReadString(n, &v->basis));
    return OneOf(v->basis, {"rotation", "file"});
  }
  if (key == "seed") return ReadInt(n, 0, INT64_MAX, &v->seed);
  if (key == "alpha") return ReadAlphas(n, &v->alpha);
  if (key == "path") return ReadPath(n, origin, &v->path);
  return InvalidArgument("unknown key; keys of [[view]] are " + std::string(kViewKeys));
}

constexpr const char* kModelKeys = "name, path, digest, group, seed, iteration, accuracy";

Status ApplyModelKey(const std::string& key, const toml::node& n, const Origin& origin,
                     ModelEntry* m) {
  if (key == "name") return ReadString(n, &m->name);
  if (key == "path") return ReadPath(n, origin, &m->path);
  if (key == "digest") {
    ND_RETURN_IF_ERROR(ReadString(n, &m->digest));
    const bool hex =
        m->digest.size() == 64 && m->digest.find_first_not_of("0123456789abcdef") == m->digest.npos;
    if (!m->digest.empty() && !hex) return InvalidArgument("expected 64 lowercase hex digits");
    return Status::Ok();
  }
  if (key == "group") return ReadString(n, &m->group);
  if (key == "seed") return ReadInt(n, -1, INT64_MAX, &m->seed);
  if (key == "iteration") return ReadInt(n, -1, INT64_MAX, &m->iteration);
  if (key == "accuracy") {
    ND_RETURN_IF_ERROR(ReadDouble(n, &m->accuracy));
    if (m->accuracy != -1 && !(m->accuracy >= 0 && m->accuracy <= 1))
      return InvalidArgument("must be in [0, 1] (or -1 = not given), got " + Number(m->accuracy));
    return Status::Ok();
  }
  return InvalidArgument("unknown key; keys of [[models]] are " + std::string(kModelKeys));
}

}  // namespace

Status ApplyModelTables(const toml::node& node, const Origin& origin, PipelineConfig* config) {
  const toml::array* tables = node.as_array();
  if (!tables || !tables->is_array_of_tables())
    return InvalidArgument(origin.name + ": [[models]]: expected an array of tables ([[models]])");
  config->models.clear();
  for (size_t i = 0; i < tables->size(); ++i) {
    const toml::table& table = *tables->get(i)->as_table();
    const std::string where = origin.name + ": [[models]] #" + std::to_string(i + 1);
    ModelEntry model;
    for (const auto& [key, value] : table) {
      const std::string name(key.str());
      Status s = ApplyModelKey(name, value, origin, &model);
      if (!s.ok()) return InvalidArgument(where + " ." + name + ": " + s.message());
    }
    for (const char* required : {"name", "path"})
      if (!table.contains(required)) return InvalidArgument(where + " ." + required + ": required");
    config->models.push_back(std::move(model));
  }
  return Status::Ok();
}

std::string PrintModelTables(const PipelineConfig& config) {
  std::string out;
  for (const ModelEntry& m : config.models) {
    out += "\n[[models]]\nname = " + Quote(m.name) + "\npath = " + Quote(m.path) +
           "\ndigest = " + Quote(m.digest) + "\ngroup = " + Quote(m.group) +
           "\nseed = " + std::to_string(m.seed) + "\niteration = " + std::to_string(m.iteration) +
           "\naccuracy = " + Number(m.accuracy) + "\n";
  }
  return out;
}

Status CheckModels(const PipelineConfig& c, const std::string& file) {
  std::set<std::string> names;
  for (size_t i = 0; i < c.models.size(); ++i) {
    const std::string where = file + ": [[models]] #" + std::to_string(i + 1);
    Status s = CheckResultName(c.models[i].name);
    if (!s.ok()) return InvalidArgument(where + " .name: " + s.message());
    if (!names.insert(c.models[i].name).second)
      return InvalidArgument(where + " .name: \"" + c.models[i].name + "\" is listed twice");
    for (const std::string& layer : c.model.layers)
      if (layer == c.models[i].name)
        return InvalidArgument(where + " .name: \"" + layer + "\" is also a layer's name");
  }
  return Status::Ok();
}

Status ApplyViewTables(const toml::node& node, const Origin& origin, PipelineConfig* config) {
  const toml::array* tables = node.as_array();
  if (!tables || !tables->is_array_of_tables())
    return InvalidArgument(origin.name + ": [[view]]: expected an array of tables ([[view]])");
  config->views.clear();
  for (size_t i = 0; i < tables->size(); ++i) {
    const toml::table& table = *tables->get(i)->as_table();
    const std::string where = origin.name + ": [[view]] #" + std::to_string(i + 1);
    ViewConfig view;
    for (const auto& [key, value] : table) {
      const std::string name(key.str());
      Status s = ApplyViewKey(name, value, origin, &view);
      if (!s.ok()) return InvalidArgument(where + " ." + name + ": " + s.message());
    }
    for (const char* required : {"name", "layer", "basis"})
      if (!table.contains(required)) return InvalidArgument(where + " ." + required + ": required");
    if (view.basis == "file" && view.path.empty())
      return InvalidArgument(where + " .path: required with basis = \"file\"");
    if (view.basis == "rotation" && table.contains("path"))
      return InvalidArgument(where + " .path: only with basis = \"file\"");
    if (view.basis == "file" && (view.alpha != std::vector<double>{1.0} || table.contains("seed")))
      return InvalidArgument(where + (table.contains("seed") ? " .seed" : " .alpha") +
                             ": only with basis = \"rotation\"");
    config->views.push_back(std::move(view));
  }
  return Status::Ok();
}

std::string PrintViewTables(const PipelineConfig& config) {
  std::string out;
  for (const ViewConfig& v : config.views) {
    out += "\n[[view]]\nname = " + Quote(v.name) + "\nlayer = " + Quote(v.layer) +
           "\nbasis = " + Quote(v.basis) + "\n";
    if (v.basis == "file") {
      out += "path = " + Quote(v.path) + "\n";
      continue;
    }
    out += "seed = " + std::to_string(v.seed) + "\nalpha = [";
    for (size_t i = 0; i < v.alpha.size(); ++i) out += (i ? ", " : "") + Number(v.alpha[i]);
    out += "]\n";
  }
  return out;
}

Status CheckViews(const PipelineConfig& c, const std::string& file) {
  std::set<std::string> names(c.model.layers.begin(), c.model.layers.end());
  for (size_t i = 0; i < c.views.size(); ++i) {
    const ViewConfig& v = c.views[i];
    const std::string where = file + ": [[view]] #" + std::to_string(i + 1);
    Status s = CheckResultName(v.name);
    if (!s.ok()) return InvalidArgument(where + " .name: " + s.message());
    bool known = false;
    for (const std::string& layer : c.model.layers) known = known || layer == v.layer;
    if (!known)
      return InvalidArgument(where + " .layer: \"" + v.layer + "\" is not one of model.layers " +
                             QuoteList(c.model.layers));
    for (double alpha : v.alpha)
      if (!names.insert(ViewResultName(v, alpha)).second)
        return InvalidArgument(where + " .name: results \"" + ViewResultName(v, alpha) +
                               "\" would share a folder with a layer or another view");
  }
  return Status::Ok();
}

}  // namespace config_internal
}  // namespace nd
