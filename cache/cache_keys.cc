#include "cache/cache_keys.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>

#include "common/base/digest.h"

namespace nd {
namespace {

// Netstring-style field: "<decimal length>:<bytes>,".
void AddField(Sha256* sha, std::string_view field) {
  std::string len = std::to_string(field.size()) + ":";
  sha->Update(len);
  sha->Update(field);
  sha->Update(",", 1);
}

std::string Escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Unescape(std::string_view v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) {
      ++i;
      out += (v[i] == 'n') ? '\n' : v[i];
    } else {
      out += v[i];
    }
  }
  return out;
}

bool ParseInt(const std::string& s, int* out) {
  if (s.empty() || s.size() > 9) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::string LayerHash(const LayerId& id) {
  Sha256 sha;
  AddField(&sha, "nd-layer-v1");
  AddField(&sha, id.model_digest_hex);
  AddField(&sha, id.preprocess);
  AddField(&sha, std::to_string(id.input_size));
  AddField(&sha, id.layer);
  AddField(&sha, DTypeName(id.dtype));
  auto d = sha.Finish();
  return ToHex(d.data(), kLayerHashHexLength / 2);
}

std::string LayerKeyPrefix(const LayerId& id) { return "a/" + LayerHash(id) + "/"; }

std::string LayerKeyPrefix(const std::string& model_digest_hex, const std::string& preprocess,
                           int input_size, const std::string& layer) {
  return LayerKeyPrefix(LayerId{model_digest_hex, preprocess, input_size, layer, DType::kFloat16});
}

std::string ActivationKey(std::string_view layer_prefix, std::string_view image_digest_hex) {
  std::string key(layer_prefix);
  key += image_digest_hex;
  return key;
}

std::string ThresholdKey(const LayerId& id, double quantile) {
  uint64_t bits;
  std::memcpy(&bits, &quantile, sizeof(bits));
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, bits);
  return "t/" + LayerHash(id) + "/" + buf;
}

std::string TailsKey(const LayerId& id, std::string_view image_set_hex) {
  return "q/" + LayerHash(id) + "/" + std::string(image_set_hex);
}

std::string ManifestKey(const LayerId& id) { return "m/" + LayerHash(id) + "/"; }

std::string BlobKey(std::string_view ns, std::string_view name) {
  std::string key = "b/";
  key += ns;
  key += '/';
  key += name;
  return key;
}

std::string_view KeyGroup(std::string_view key) {
  size_t first = key.find('/');
  if (first == std::string_view::npos) return key;
  size_t second = key.find('/', first + 1);
  if (second == std::string_view::npos) return key;
  return key.substr(0, second + 1);
}

std::string_view KeyLayerHash(std::string_view key) {
  if (key.size() < kLayerKeyPrefixLength || key[1] != '/' || key[kLayerKeyPrefixLength - 1] != '/')
    return {};
  if (key[0] != 'a' && key[0] != 't' && key[0] != 'm' && key[0] != 'q') return {};
  return key.substr(2, kLayerHashHexLength);
}

std::string EncodeLayerManifest(const LayerManifest& m) {
  std::string out = "nd-layer-manifest 1\n";
  auto add = [&out](const char* k, const std::string& v) {
    out += k;
    out += '=';
    out += Escape(v);
    out += '\n';
  };
  add("model_path", m.model_path);
  add("model_digest", m.model_digest_hex);
  add("preprocess", m.preprocess);
  add("input_size", std::to_string(m.input_size));
  add("layer", m.layer);
  add("dtype", DTypeName(m.dtype));
  add("units", std::to_string(m.units));
  add("h", std::to_string(m.h));
  add("w", std::to_string(m.w));
  if (m.last_used_unix > 0) add("last_used", std::to_string(m.last_used_unix));
  return out;
}

Status DecodeLayerManifest(std::string_view text, LayerManifest* out) {
  constexpr std::string_view kHeader = "nd-layer-manifest 1\n";
  if (text.substr(0, kHeader.size()) != kHeader) {
    return DataLoss("layer manifest: missing 'nd-layer-manifest 1' header");
  }
  std::map<std::string, std::string> fields;
  size_t pos = kHeader.size();
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      return DataLoss("layer manifest: line without '=': '" + std::string(line) + "'");
    }
    fields[std::string(line.substr(0, eq))] = Unescape(line.substr(eq + 1));
  }
  LayerManifest m;
  for (const char* required : {"model_digest", "preprocess", "input_size", "layer", "dtype"}) {
    if (fields.find(required) == fields.end()) {
      return DataLoss(std::string("layer manifest: missing field '") + required + "'");
    }
  }
  m.model_path = fields["model_path"];
  m.model_digest_hex = fields["model_digest"];
  m.preprocess = fields["preprocess"];
  m.layer = fields["layer"];
  auto dtype = ParseDType(fields["dtype"]);
  if (!dtype.ok()) return DataLoss("layer manifest: " + dtype.status().message());
  m.dtype = *dtype;
  struct IntField {
    const char* name;
    int* dst;
  };
  for (const IntField& f : {IntField{"input_size", &m.input_size}, IntField{"units", &m.units},
                            IntField{"h", &m.h}, IntField{"w", &m.w}}) {
    auto it = fields.find(f.name);
    if (it == fields.end()) continue;
    if (!ParseInt(it->second, f.dst)) {
      return DataLoss(std::string("layer manifest: field '") + f.name + "' = '" + it->second +
                      "' is not a non-negative integer");
    }
  }
  if (auto it = fields.find("last_used"); it != fields.end()) {
    int64_t v = 0;
    bool ok = !it->second.empty() && it->second.size() <= 18;
    for (char ch : it->second) {
      if (ch < '0' || ch > '9') ok = false;
      v = v * 10 + (ch - '0');
    }
    if (!ok) {
      return DataLoss("layer manifest: field 'last_used' = '" + it->second +
                      "' is not a non-negative integer");
    }
    m.last_used_unix = v;
  }
  *out = std::move(m);
  return Status::Ok();
}

}  // namespace nd
