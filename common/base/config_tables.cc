// The arrays of tables of pipeline.toml: [[view]] (config.h ViewConfig).
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

std::vector<std::string> ResultSetNames(const PipelineConfig& config) {
  std::vector<std::string> names = config.model.layers;
  for (const ViewConfig& view : config.views)
    for (double alpha : view.alpha) names.push_back(ViewResultName(view, alpha));
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

}  // namespace

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
