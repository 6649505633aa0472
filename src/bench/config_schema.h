#pragma once
// A small schema-validation helper for YAML configs. A ConfigMap wraps one YAML mapping together with the file
// it came from and its key path ("scenarios[1].batch"); every key the reader asks for is, by that act, an allowed
// key, and finish() rejects every other key with the list of allowed ones. So a config reader written with it
// checks every key: typos, wrong types and out-of-range values all end in one error line
//   "<config file>: <key path>: <problem>; allowed: <what is allowed>".
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/strings.h"  // join_list, for the messages that list what is allowed

namespace gptbench::bench {

// "<file>: <path>: <problem>[; allowed: <allowed>]" as a gptbench::Error.
[[noreturn]] void config_fail(const std::string& file, const std::string& path, const std::string& problem,
                              const std::string& allowed = "");

// A YAML node (any kind) with its place in the file, for element access and scalar conversion.
class ConfigValue {
 public:
  ConfigValue(YAML::Node node, std::string file, std::string path);

  const YAML::Node& node() const { return node_; }
  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  [[noreturn]] void fail(const std::string& problem, const std::string& allowed = "") const;

  bool is_map() const { return node_.IsMap(); }
  bool is_sequence() const { return node_.IsSequence(); }
  bool is_scalar() const { return node_.IsScalar(); }

  std::string as_string() const;  // any scalar
  std::int64_t as_int(std::int64_t min, std::int64_t max) const;
  double as_double(double min, double max) const;
  bool as_bool() const;
  std::string as_choice(const std::vector<std::string>& allowed) const;
  std::vector<ConfigValue> elements() const;  // a sequence's elements, path "key[i]"

  // A scenario parameter: an integer, a range "128..1024 x2" (geometric) / "128..512 +128" (arithmetic,
  // step 1 when omitted), or a list of those. Values must lie in [min, max]; duplicates are an error.
  std::vector<std::int64_t> as_int_values(std::int64_t min, std::int64_t max) const;

 private:
  YAML::Node node_;
  std::string file_;
  std::string path_;
};

class ConfigMap {
 public:
  // node must be a mapping (an absent/null node reads as an empty mapping).
  explicit ConfigMap(const ConfigValue& value);
  ConfigMap(YAML::Node node, std::string file, std::string path);

  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  std::string key_path(const std::string& key) const;
  [[noreturn]] void fail(const std::string& key, const std::string& problem, const std::string& allowed = "") const;

  // Marks `key` as allowed; returns the value when present (and not null).
  std::optional<ConfigValue> get(const std::string& key);
  ConfigValue require(const std::string& key);  // missing → "is required"

  std::string get_string(const std::string& key, const std::string& fallback);
  std::string require_string(const std::string& key);
  std::int64_t get_int(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max);
  double get_double(const std::string& key, double fallback, double min, double max);
  bool get_bool(const std::string& key, bool fallback);
  std::string get_choice(const std::string& key, const std::string& fallback, const std::vector<std::string>& allowed);
  // A list of choices (a single scalar counts as a one-element list); duplicates are an error.
  std::vector<std::string> get_choice_list(const std::string& key, const std::vector<std::string>& fallback,
                                           const std::vector<std::string>& allowed);
  // A mapping of scalar values, as strings.
  std::map<std::string, std::string> get_string_map(const std::string& key);
  std::vector<std::int64_t> get_int_values(const std::string& key, const std::vector<std::int64_t>& fallback,
                                           std::int64_t min, std::int64_t max);

  // Throws for the first key that no get/require call asked for, listing the allowed keys.
  void finish() const;

 private:
  YAML::Node node_;
  std::string file_;
  std::string path_;
  std::vector<std::string> allowed_;  // in the order they were asked for, for the error message
};

}  // namespace gptbench::bench
