#include "controller/experiment/yaml_reader.h"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

namespace faultline::experiment {

// User text echoed in messages is cut short and made printable, so hostile input cannot flood
// or garble a terminal.
std::string Printable(std::string_view s, size_t max_chars) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max_chars; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char* kHex = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  if (s.size() > max_chars) out += "...";
  return out;
}

std::string Quoted(std::string_view s) { return "'" + Printable(s) + "'"; }

// [a-z0-9-]{1,63}: names of experiments, targets, faults, probes and objectives. They appear in
// ids, file names and report test-case names, so they are kept boring.
bool IsName(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string JoinList(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += i + 1 == items.size() ? " or " : ", ";
    out += items[i];
  }
  return out;
}

std::string KindOf(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}

// Decimal integer in [lo, hi]; no sign other than a leading '-', no spaces.
std::optional<int64_t> ParseInt(std::string_view s, int64_t lo, int64_t hi) {
  bool neg = false;
  if (!s.empty() && s[0] == '-') {
    neg = true;
    s.remove_prefix(1);
  }
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (neg) v = -v;
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

// A number with an optional unit suffix: returns value * multiplier of the matched suffix.
namespace {

std::optional<uint64_t> WithUnit(std::string_view s,
                                 std::initializer_list<std::pair<std::string_view, double>> units) {
  size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  if (i == 0 || i > 15) return std::nullopt;
  std::string number(s.substr(0, i));
  char* end = nullptr;
  double v = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size()) return std::nullopt;
  std::string unit(s.substr(i));
  std::transform(unit.begin(), unit.end(), unit.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (const auto& [name, mult] : units) {
    if (unit == name) {
      double r = v * mult;
      if (!(r >= 0 && r < 1.8e19)) return std::nullopt;
      return static_cast<uint64_t>(r);
    }
  }
  return std::nullopt;
}

}  // namespace

// tc's rate units: bit/kbit/mbit/gbit are bits per second, bps/kbps/mbps/gbps bytes per second.
// Returns bytes per second.
std::optional<uint64_t> ParseRate(std::string_view s) {
  return WithUnit(s, {{"bit", 1.0 / 8},
                      {"kbit", 1e3 / 8},
                      {"mbit", 1e6 / 8},
                      {"gbit", 1e9 / 8},
                      {"bps", 1},
                      {"kbps", 1e3},
                      {"mbps", 1e6},
                      {"gbps", 1e9}});
}

// Sizes: b, kb, mb (powers of 1024, as tc).
std::optional<uint64_t> ParseBytes(std::string_view s) {
  return WithUnit(s, {{"", 1}, {"b", 1}, {"kb", 1024}, {"mb", 1024 * 1024}});
}

SourcePos YamlReader::Pos(const YAML::Mark& m) const {
  SourcePos p;
  p.file = file_;
  if (!m.is_null() && m.line >= 0) {
    p.line = m.line + 1;
    p.column = m.column + 1;
  }
  return p;
}

SourcePos YamlReader::Pos(const YAML::Node& n) const {
  if (n.IsNull()) {
    for (const auto& [value, key_mark] : null_values_) {
      if (value.is(n)) return Pos(key_mark);
    }
  }
  return Pos(n.Mark());
}

void YamlReader::Error(const SourcePos& pos, std::string field, std::string message) {
  // A hostile file can hold thousands of mistakes; nobody reads past the first screenful.
  if (errors_.size() >= kMaxErrors) {
    too_many_errors_ = true;
    return;
  }
  errors_.push_back({pos, std::move(field), std::move(message)});
}

void YamlReader::Error(const YAML::Node& at, std::string field, std::string message) {
  Error(Pos(at), std::move(field), std::move(message));
}

void YamlReader::Warn(const YAML::Node& at, std::string field, std::string message) {
  warnings_.push_back({Pos(at), std::move(field), std::move(message)});
}

const MapField* YamlReader::OneKind(const std::vector<MapField>& fields, const YAML::Node& n,
                                    const std::string& path,
                                    const std::vector<std::string_view>& kinds,
                                    const std::string& what, const std::string& missing) {
  std::vector<const MapField*> found;
  for (const MapField& f : fields) {
    if (std::find(kinds.begin(), kinds.end(), f.key) != kinds.end()) found.push_back(&f);
  }
  if (found.empty()) {
    Error(n, path, missing);
    return nullptr;
  }
  if (found.size() > 1) {
    Error(found[1]->key_node, Sub(path, found[1]->key),
          what + " has exactly one kind; this one already has '" + found[0]->key + "'");
    return nullptr;
  }
  return found[0];
}

std::optional<std::vector<MapField>> YamlReader::Map(const YAML::Node& n, const std::string& path,
                                                     const std::vector<std::string_view>& allowed) {
  std::vector<std::string_view> keys(allowed);
  return MapOf(n, path, [&](const YAML::Node& key_node, const std::string& key) {
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) return true;
    std::string message = "unknown field " + Quoted(key);
    std::string_view best;
    size_t best_d = 3;
    for (std::string_view k : keys) {
      size_t d = EditDistance(key, k);
      if (d < best_d) best_d = d, best = k;
    }
    if (!best.empty()) {
      message += "; did you mean '" + std::string(best) + "'?";
    } else {
      std::vector<std::string> names(keys.begin(), keys.end());
      message += " (expected " + JoinList(names) + ")";
    }
    Error(key_node, Sub(path, Printable(key)), message);
    return false;
  });
}

std::optional<std::vector<MapField>> YamlReader::MapOf(
    const YAML::Node& n, const std::string& path,
    const std::function<bool(const YAML::Node&, const std::string&)>& accept_key) {
  if (!n.IsMap()) {
    Error(n, path, "expected a mapping, got " + KindOf(n));
    return std::nullopt;
  }
  std::vector<MapField> out;
  std::set<std::string> seen;
  for (auto it = n.begin(); it != n.end(); ++it) {
    const YAML::Node key_node = it->first;
    if (!key_node.IsScalar()) {
      Error(key_node, path, "keys must be plain strings, got " + KindOf(key_node));
      continue;
    }
    const std::string key = key_node.Scalar();
    if (!seen.insert(key).second) {
      Error(key_node, Sub(path, Printable(key)), "duplicate key " + Quoted(key));
      continue;
    }
    if (!accept_key(key_node, key)) continue;
    if (it->second.IsNull()) null_values_.emplace_back(it->second, key_node.Mark());
    out.push_back({key, key_node, it->second});
  }
  return out;
}

const YAML::Node* YamlReader::Find(const std::vector<MapField>& fields, std::string_view key) {
  for (const MapField& f : fields) {
    if (f.key == key) return &f.value;
  }
  return nullptr;
}

const YAML::Node* YamlReader::Need(const std::vector<MapField>& fields, const YAML::Node& map,
                                   const std::string& path, std::string_view key) {
  const YAML::Node* v = Find(fields, key);
  if (!v) {
    Error(map, Sub(path, key), "missing required field");
    return nullptr;
  }
  if (v->IsNull()) {
    Error(*v, Sub(path, key), "requires a value");
    return nullptr;
  }
  return v;
}

std::optional<std::string> YamlReader::String(const YAML::Node& n, const std::string& field) {
  if (!n.IsScalar()) {
    Error(n, field, "expected a string, got " + KindOf(n));
    return std::nullopt;
  }
  return n.Scalar();
}

std::optional<int64_t> YamlReader::Int(const YAML::Node& n, const std::string& field, int64_t lo,
                                       int64_t hi) {
  auto s = String(n, field);
  if (!s) return std::nullopt;
  auto v = ParseInt(*s, lo, hi);
  if (!v) {
    Error(n, field,
          "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
              ", got " + Quoted(*s));
  }
  return v;
}

std::optional<Duration> YamlReader::Dur(const YAML::Node& n, const std::string& field,
                                        bool strictly_positive, std::optional<Duration> max) {
  auto s = String(n, field);
  if (!s) return std::nullopt;
  Result<Duration> d = ParseDuration(*s);
  if (!d.ok()) {
    // ParseDuration's message echoes the text; use it only when that text is harmless.
    Error(n, field, Printable(*s) == *s ? d.status().message() : "invalid duration " + Quoted(*s));
    return std::nullopt;
  }
  if (strictly_positive && d->count() <= 0) {
    Error(n, field, "must be greater than 0");
    return std::nullopt;
  }
  if (max && *d > *max) {
    Error(n, field, "must be at most " + FormatDuration(*max) + ", got " + FormatDuration(*d));
    return std::nullopt;
  }
  return *d;
}

std::optional<std::string> YamlReader::Name(const YAML::Node& n, const std::string& field) {
  auto s = String(n, field);
  if (!s) return std::nullopt;
  if (!IsName(*s)) {
    Error(n, field, Quoted(*s) + " " + kNameRule);
    return std::nullopt;
  }
  return s;
}

std::optional<std::string> YamlReader::Regex(const YAML::Node& n, const std::string& field) {
  auto s = String(n, field);
  if (!s) return std::nullopt;
  if (s->size() > kMaxRegexLength) {
    Error(n, field, "regex longer than 1024 characters");
    return std::nullopt;
  }
  // RE2, as the probes run it: linear time, no recursion on long inputs.
  RE2 re(*s, RE2::Quiet);
  if (!re.ok()) {
    Error(n, field, "invalid regex " + Quoted(*s) + ": " + re.error());
    return std::nullopt;
  }
  return s;
}

std::map<std::string, std::string> YamlReader::Labels(const YAML::Node& n,
                                                      const std::string& path) {
  std::map<std::string, std::string> out;
  auto fields = MapOf(n, path, [&](const YAML::Node& key_node, const std::string& key) {
    if (IsLabelToken(key)) return true;
    Error(key_node, Sub(path, Printable(key)), "label " + Quoted(key) + " " + kLabelRule);
    return false;
  });
  if (!fields) return out;
  for (const MapField& f : *fields) {
    const std::string field = Sub(path, f.key);
    auto v = String(f.value, field);
    if (!v) continue;
    if (!IsLabelToken(*v)) {
      Error(f.value, field, "label value " + Quoted(*v) + " " + kLabelRule);
      continue;
    }
    out[f.key] = *v;
  }
  return out;
}

bool YamlReader::List(const YAML::Node& n, const std::string& path, bool non_empty) {
  if (!n.IsSequence()) {
    Error(n, path, "expected a list, got " + KindOf(n));
    return false;
  }
  if (non_empty && n.size() == 0) {
    Error(n, path, "needs at least one entry");
    return false;
  }
  return true;
}

std::optional<double> YamlReader::Share(const YAML::Node& n, const std::string& field) {
  auto s = String(n, field);
  if (!s) return std::nullopt;
  std::string text = *s;
  double scale = 1.0;
  if (!text.empty() && text.back() == '%') {
    text.pop_back();
    scale = 100.0;
  }
  char* end = nullptr;
  double p = text.empty() ? -1 : std::strtod(text.c_str(), &end) / scale;
  if (text.empty() || end == nullptr || *end != '\0' || !(p >= 0.0 && p <= 1e6)) {
    Error(n, field, "expected a share such as 0.3 or 30%, got " + Quoted(*s));
    return std::nullopt;
  }
  return p;
}

std::optional<uint32_t> YamlReader::Millis(const YAML::Node& n, const std::string& field,
                                           bool positive) {
  auto d = Dur(n, field, positive);
  if (!d) return std::nullopt;
  return ClampedCount<std::chrono::milliseconds>(*d);
}

}  // namespace faultline::experiment
