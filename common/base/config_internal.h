// The config loader's own helpers, shared by its two files: config.cc (the [section] keys) and
// config_tables.cc (the arrays of tables [[view]] and [[models]]). Not for other users: the
// configuration's only entry points are in config.h.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/base/config.h"
#include "common/base/status.h"

namespace nd::config_internal {

// Where a value came from: used in error messages and to resolve relative paths.
struct Origin {
  std::string name;            // "pipeline.toml" or "--set"
  std::filesystem::path base;  // directory that relative paths are resolved against
};

// TOML spellings of values (ConfigToToml).
std::string Quote(const std::string& s);
std::string QuoteList(const std::vector<std::string>& v);
std::string Number(double d);

// Readers of one value; errors are InvalidArgument with the reason only (the caller adds
// "<file>: [section].key: ").
Status ReadString(const toml::node& n, std::string* out);
// Relative paths are resolved against origin.base.
Status ReadPath(const toml::node& n, const Origin& origin, std::string* out,
                bool allow_empty = false);
Status ReadInt(const toml::node& n, int64_t lo, int64_t hi, int64_t* out);
Status ReadBool(const toml::node& n, bool* out);
Status ReadDouble(const toml::node& n, double* out);  // integers too
Status ReadStringList(const toml::node& n, bool allow_scalar, std::vector<std::string>* out);
Status OneOf(const std::string& value, std::initializer_list<const char*> allowed);

// [[view]] (config_tables.cc): `node` is the root's "view" entry. Errors name the table by its
// position and key: "pipeline.toml: [[view]] #2 .alpha: must be in [0, 1], got 2".
Status ApplyViewTables(const toml::node& node, const Origin& origin, PipelineConfig* config);
// The [[view]] tables of ConfigToToml (empty when there are none).
std::string PrintViewTables(const PipelineConfig& config);
// [[models]] likewise.
Status ApplyModelTables(const toml::node& node, const Origin& origin, PipelineConfig* config);
std::string PrintModelTables(const PipelineConfig& config);
Status CheckModels(const PipelineConfig& config, const std::string& file);
// Checks views against the rest of the configuration (layer names, unique result names).
Status CheckViews(const PipelineConfig& config, const std::string& file);

}  // namespace nd::config_internal
