#include "bench/config_schema.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <regex>

#include "common/error.h"

namespace gptbench::bench {

void config_fail(const std::string& file, const std::string& path, const std::string& problem,
                 const std::string& allowed) {
  std::string message = file + ": " + (path.empty() ? std::string("(top level)") : path) + ": " + problem;
  if (!allowed.empty()) message += "; allowed: " + allowed;
  throw Error(message);
}

namespace {

std::string describe_node(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "nothing (null)";
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  return "an undefined value";
}

// Strict integer parse: optional sign, digits, optional "_" or "," grouping is not accepted (YAML 1.2 style).
bool parse_int(const std::string& text, std::int64_t& out) {
  if (text.empty()) return false;
  std::size_t i = (text[0] == '-' || text[0] == '+') ? 1 : 0;
  if (i == text.size()) return false;
  for (std::size_t j = i; j < text.size(); ++j)
    if (text[j] < '0' || text[j] > '9') return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno == ERANGE || *end != '\0') return false;
  out = v;
  return true;
}

bool parse_double(const std::string& text, double& out) {
  if (text.empty()) return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (errno == ERANGE || *end != '\0' || !std::isfinite(v)) return false;
  out = v;
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
ConfigValue::ConfigValue(YAML::Node node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {}

void ConfigValue::fail(const std::string& problem, const std::string& allowed) const {
  config_fail(file_, path_, problem, allowed);
}

std::string ConfigValue::as_string() const {
  if (!node_.IsScalar()) fail("expected a string, got " + describe_node(node_), "a string");
  return node_.Scalar();
}

std::int64_t ConfigValue::as_int(std::int64_t min, std::int64_t max) const {
  const std::string range = fmt::format("an integer in {}..{}", min, max);
  if (!node_.IsScalar()) fail("expected an integer, got " + describe_node(node_), range);
  std::int64_t v = 0;
  if (!parse_int(node_.Scalar(), v)) fail("expected an integer, got '" + node_.Scalar() + "'", range);
  if (v < min || v > max) fail(fmt::format("{} is out of range", v), range);
  return v;
}

double ConfigValue::as_double(double min, double max) const {
  const std::string range = fmt::format("a number in {}..{}", min, max);
  if (!node_.IsScalar()) fail("expected a number, got " + describe_node(node_), range);
  double v = 0;
  if (!parse_double(node_.Scalar(), v)) fail("expected a number, got '" + node_.Scalar() + "'", range);
  if (v < min || v > max) fail(fmt::format("{} is out of range", v), range);
  return v;
}

bool ConfigValue::as_bool() const {
  if (node_.IsScalar()) {
    const std::string& s = node_.Scalar();
    if (s == "true" || s == "True" || s == "TRUE" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "False" || s == "FALSE" || s == "no" || s == "off") return false;
  }
  fail("expected true or false, got " + describe_node(node_), "true, false");
}

std::string ConfigValue::as_choice(const std::vector<std::string>& allowed) const {
  if (!node_.IsScalar()) fail("expected one of a fixed set of names, got " + describe_node(node_), join_list(allowed));
  const std::string& s = node_.Scalar();
  if (std::find(allowed.begin(), allowed.end(), s) == allowed.end())
    fail("unknown value '" + s + "'", join_list(allowed));
  return s;
}

std::vector<ConfigValue> ConfigValue::elements() const {
  if (!node_.IsSequence()) fail("expected a list, got " + describe_node(node_), "a list");
  std::vector<ConfigValue> out;
  for (std::size_t i = 0; i < node_.size(); ++i) out.emplace_back(node_[i], file_, fmt::format("{}[{}]", path_, i));
  return out;
}

std::vector<std::int64_t> ConfigValue::as_int_values(std::int64_t min, std::int64_t max) const {
  const std::string allowed = fmt::format(
      "integers in {}..{}: a number, a list [1, 8, 32], or a range like '128..1024 x2' or '128..512 +128'", min, max);
  std::vector<std::int64_t> values;
  auto add_scalar = [&](const ConfigValue& v) {
    if (!v.node_.IsScalar()) v.fail("expected an integer or a range, got " + describe_node(v.node_), allowed);
    const std::string text = v.node_.Scalar();
    std::int64_t single = 0;
    if (parse_int(text, single)) {
      if (single < min || single > max) v.fail(fmt::format("{} is out of range", single), allowed);
      values.push_back(single);
      return;
    }
    static const std::regex range_re(R"(^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*(?:([x*+])\s*(\d+))?\s*$)");
    std::smatch m;
    if (!std::regex_match(text, m, range_re)) v.fail("cannot read '" + text + "' as an integer or a range", allowed);
    std::int64_t first = 0, last = 0, step = 1;
    parse_int(m[1].str(), first);
    parse_int(m[2].str(), last);
    const std::string op = m[3].matched ? m[3].str() : "+";
    if (m[4].matched) parse_int(m[4].str(), step);
    if (first > last) v.fail(fmt::format("range '{}' is empty (start {} > end {})", text, first, last), allowed);
    if (first < min || last > max) v.fail(fmt::format("range '{}' leaves {}..{}", text, min, max), allowed);
    const bool geometric = op != "+";
    if (geometric && (step < 2 || first < 1))
      v.fail(fmt::format("geometric range '{}' needs a factor >= 2 and a start >= 1", text), allowed);
    if (!geometric && step < 1) v.fail(fmt::format("range '{}' needs a step >= 1", text), allowed);
    for (std::int64_t x = first; x <= last; x = geometric ? x * step : x + step) {
      values.push_back(x);
      if (values.size() > 10000) v.fail("range '" + text + "' has more than 10000 values", allowed);
    }
  };
  if (node_.IsSequence()) {
    if (node_.size() == 0) fail("the list is empty", allowed);
    for (const auto& e : elements()) add_scalar(e);
  } else {
    add_scalar(*this);
  }
  std::vector<std::int64_t> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end()) fail(fmt::format("value {} appears twice", *dup), allowed);
  return values;
}

// ---------------------------------------------------------------------------------------------------------------
ConfigMap::ConfigMap(const ConfigValue& value) : ConfigMap(value.node(), value.file(), value.path()) {}

ConfigMap::ConfigMap(YAML::Node node, std::string file, std::string path)
    : node_(std::move(node)), file_(std::move(file)), path_(std::move(path)) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap())
    config_fail(file_, path_, "expected a mapping of keys, got " + describe_node(node_), "a mapping");
  // YAML forbids duplicate keys but yaml-cpp keeps one silently; a second value would be ignored unseen.
  if (node_.IsMap()) {
    std::set<std::string> seen;
    for (auto it = node_.begin(); it != node_.end(); ++it)
      if (it->first.IsScalar() && !seen.insert(it->first.Scalar()).second)
        config_fail(file_, key_path(it->first.Scalar()), "the key appears twice");
  }
}

std::string ConfigMap::key_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

void ConfigMap::fail(const std::string& key, const std::string& problem, const std::string& allowed) const {
  config_fail(file_, key_path(key), problem, allowed);
}

std::optional<ConfigValue> ConfigMap::get(const std::string& key) {
  if (std::find(allowed_.begin(), allowed_.end(), key) == allowed_.end()) allowed_.push_back(key);
  if (!node_.IsMap()) return std::nullopt;
  YAML::Node child = node_[key];
  if (!child.IsDefined() || child.IsNull()) return std::nullopt;
  return ConfigValue(child, file_, key_path(key));
}

ConfigValue ConfigMap::require(const std::string& key) {
  auto v = get(key);
  if (!v) fail(key, "is required");
  return *v;
}

std::string ConfigMap::get_string(const std::string& key, const std::string& fallback) {
  auto v = get(key);
  return v ? v->as_string() : fallback;
}

std::string ConfigMap::require_string(const std::string& key) { return require(key).as_string(); }

std::int64_t ConfigMap::get_int(const std::string& key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
  auto v = get(key);
  return v ? v->as_int(min, max) : fallback;
}

double ConfigMap::get_double(const std::string& key, double fallback, double min, double max) {
  auto v = get(key);
  return v ? v->as_double(min, max) : fallback;
}

bool ConfigMap::get_bool(const std::string& key, bool fallback) {
  auto v = get(key);
  return v ? v->as_bool() : fallback;
}

std::string ConfigMap::get_choice(const std::string& key, const std::string& fallback,
                                  const std::vector<std::string>& allowed) {
  auto v = get(key);
  return v ? v->as_choice(allowed) : fallback;
}

std::vector<std::string> ConfigMap::get_choice_list(const std::string& key, const std::vector<std::string>& fallback,
                                                    const std::vector<std::string>& allowed) {
  auto v = get(key);
  if (!v) return fallback;
  std::vector<std::string> out;
  if (v->is_sequence()) {
    if (v->node().size() == 0) v->fail("the list is empty", join_list(allowed));
    for (const auto& e : v->elements()) {
      std::string s = e.as_choice(allowed);
      if (std::find(out.begin(), out.end(), s) != out.end()) e.fail("'" + s + "' appears twice", join_list(allowed));
      out.push_back(s);
    }
  } else {
    out.push_back(v->as_choice(allowed));
  }
  return out;
}

std::map<std::string, std::string> ConfigMap::get_string_map(const std::string& key) {
  auto v = get(key);
  std::map<std::string, std::string> out;
  if (!v) return out;
  if (!v->is_map()) v->fail("expected a mapping of names to values, got " + describe_node(v->node()), "a mapping");
  for (auto it = v->node().begin(); it != v->node().end(); ++it) {
    const std::string name = it->first.as<std::string>();
    ConfigValue item(it->second, file_, v->path() + "." + name);
    out[name] = item.as_string();
  }
  return out;
}

std::vector<std::int64_t> ConfigMap::get_int_values(const std::string& key, const std::vector<std::int64_t>& fallback,
                                                    std::int64_t min, std::int64_t max) {
  auto v = get(key);
  return v ? v->as_int_values(min, max) : fallback;
}

void ConfigMap::finish() const {
  if (!node_.IsMap()) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const std::string key = it->first.IsScalar() ? it->first.Scalar() : std::string("<non-scalar key>");
    if (std::find(allowed_.begin(), allowed_.end(), key) == allowed_.end())
      config_fail(file_, key_path(key), "unknown key", join_list(allowed_));
  }
}

}  // namespace gptbench::bench
