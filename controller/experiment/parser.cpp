#include "controller/experiment/parser.h"

#include <arpa/inet.h>
#include <re2/re2.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <regex>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include "common/dns_name.h"
#include "common/labels.h"

namespace faultline::experiment {

std::string Diagnostic::ToString() const {
  std::string out = pos.file.empty() ? "<input>" : pos.file;
  if (pos.line > 0) out += ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
  out += ": ";
  if (!field.empty()) out += field + ": ";
  out += message;
  return out;
}

namespace {

using namespace std::chrono_literals;

constexpr std::string_view kApiVersion = "faultline/v1";
constexpr Duration kMaxFaultDuration = 24h;
constexpr Duration kMinInterval = 10ms;
constexpr int kMaxIntervalTimeoutRatio = 10;
constexpr size_t kMaxDomains = 64;
constexpr size_t kMaxRegexLength = 1024;
constexpr size_t kMaxUrlLength = 2048;
constexpr size_t kMaxDescriptionLength = 4096;
constexpr size_t kMaxArgvEntries = 256;
constexpr size_t kMaxArgLength = 4096;
constexpr size_t kMaxErrors = 100;

// User text echoed in messages is cut short and made printable, so hostile input cannot flood
// or garble a terminal.
std::string Printable(std::string_view s, size_t max_chars = 64) {
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
constexpr const char* kNameRule = "must be 1-63 characters of a-z, 0-9 and '-'";

constexpr const char* kLabelRule = kLabelTokenRule;

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

// Returns why `name` is not a usable DNS name (empty optional when it is); see ValidateDnsName.
std::optional<std::string> DnsNameProblem(std::string_view name, bool allow_wildcard) {
  Status s = ValidateDnsName(name, allow_wildcard);
  if (s.ok()) return std::nullopt;
  return s.message();
}

// A host is a DNS name, an IPv4 address (which is also a DNS name syntactically) or a bracketed
// IPv6 address. On success fills host/port; `port` stays 0 when absent and optional.
std::optional<std::string> SplitHostPort(std::string_view s, bool port_required, std::string* host,
                                         int* port) {
  std::string_view h, p;
  bool has_port = false;
  if (!s.empty() && s[0] == '[') {
    size_t close = s.find(']');
    if (close == std::string_view::npos) return "unterminated '[' in " + Quoted(s);
    h = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return "expected ':port' after ']' in " + Quoted(s);
      p = rest.substr(1);
      has_port = true;
    }
    in6_addr addr{};
    if (inet_pton(AF_INET6, std::string(h).c_str(), &addr) != 1) {
      return "invalid IPv6 address in " + Quoted(s);
    }
  } else {
    size_t colon = s.rfind(':');
    if (colon != std::string_view::npos) {
      h = s.substr(0, colon);
      p = s.substr(colon + 1);
      has_port = true;
    } else {
      h = s;
    }
    if (h.empty()) return "missing host in " + Quoted(s);
    if (auto problem = DnsNameProblem(h, false)) return "invalid host: " + *problem;
  }
  if (port_required && !has_port) return "expected host:port, got " + Quoted(s);
  if (has_port) {
    auto v = ParseInt(p, 1, 65535);
    if (!v || p[0] == '-') return "port must be 1..65535, got " + Quoted(p);
    *port = static_cast<int>(*v);
  }
  *host = std::string(h);
  return std::nullopt;
}

// An IPv4/IPv6 address, optionally with /prefix.
bool IsCidr(std::string_view s) {
  std::string addr(s);
  int max_prefix = 32;
  size_t slash = s.find('/');
  std::string prefix;
  if (slash != std::string_view::npos) {
    addr = std::string(s.substr(0, slash));
    prefix = std::string(s.substr(slash + 1));
  }
  unsigned char buf[16];
  if (inet_pton(AF_INET, addr.c_str(), buf) != 1) {
    if (inet_pton(AF_INET6, addr.c_str(), buf) != 1) return false;
    max_prefix = 128;
  }
  if (slash == std::string_view::npos) return true;
  auto p = ParseInt(prefix, 0, max_prefix);
  return p.has_value() && prefix[0] != '-';
}

// A number with an optional unit suffix: returns value * multiplier of the matched suffix.
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

std::optional<std::string> UrlProblem(std::string_view url) {
  if (url.size() > kMaxUrlLength) return "URL longer than 2048 characters";
  for (char c : url) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return "URL contains a space, control or non-ASCII character";
  }
  std::string lower(url.substr(0, 8));
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  std::string_view rest;
  if (lower.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (lower.rfind("https://", 0) == 0) {
    rest = url.substr(8);
  } else {
    return "URL must start with http:// or https://";
  }
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  size_t at = authority.rfind('@');
  if (at != std::string_view::npos) authority = authority.substr(at + 1);
  if (authority.empty()) return "URL has no host";
  std::string host;
  int port = 0;
  if (auto problem = SplitHostPort(authority, false, &host, &port)) return problem;
  return std::nullopt;
}

// A key → value view of one YAML mapping that has already been checked for unknown, duplicate
// and non-scalar keys.
struct MapField {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  ParseOutcome Run(std::string_view text);

 private:
  // ---- diagnostics ----
  SourcePos Pos(const YAML::Mark& m) const {
    SourcePos p;
    p.file = file_;
    if (!m.is_null() && m.line >= 0) {
      p.line = m.line + 1;
      p.column = m.column + 1;
    }
    return p;
  }
  // yaml-cpp marks an empty value (`duration:`) where the next token starts, often on the next
  // line; the key is where the author looks, so empty values are reported at their key.
  SourcePos Pos(const YAML::Node& n) const {
    if (n.IsNull()) {
      for (const auto& [value, key_mark] : null_values_) {
        if (value.is(n)) return Pos(key_mark);
      }
    }
    return Pos(n.Mark());
  }
  void Error(const SourcePos& pos, std::string field, std::string message) {
    // A hostile file can hold thousands of mistakes; nobody reads past the first screenful.
    if (errors_.size() >= kMaxErrors) {
      too_many_errors_ = true;
      return;
    }
    errors_.push_back({pos, std::move(field), std::move(message)});
  }
  void Error(const YAML::Node& at, std::string field, std::string message) {
    Error(Pos(at), std::move(field), std::move(message));
  }
  void Warn(const YAML::Node& at, std::string field, std::string message) {
    warnings_.push_back({Pos(at), std::move(field), std::move(message)});
  }

  static std::string Sub(const std::string& path, std::string_view key) {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }
  static std::string Index(const std::string& path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
  }

  // ---- structure helpers ----

  // Checks that `n` is a mapping whose keys are unique scalars from `allowed`; reports every
  // violation. Returns nullopt (after an error) when `n` is not a mapping at all.
  // The one field of `fields` whose key is one of `kinds` (a oneof written as alternative keys).
  // None: `missing` is reported at `n`; several: the second is reported, naming the first
  // ("<what> has exactly one kind; ..."). nullptr after an error.
  const MapField* OneKind(const std::vector<MapField>& fields, const YAML::Node& n,
                          const std::string& path, const std::vector<std::string_view>& kinds,
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

  std::optional<std::vector<MapField>> Map(const YAML::Node& n, const std::string& path,
                                           std::initializer_list<std::string_view> allowed) {
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

  // A mapping with free-form keys; `accept_key` reports and rejects bad keys.
  std::optional<std::vector<MapField>> MapOf(
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

  static const YAML::Node* Find(const std::vector<MapField>& fields, std::string_view key) {
    for (const MapField& f : fields) {
      if (f.key == key) return &f.value;
    }
    return nullptr;
  }

  // Like Find, but a missing (or null) field is an error reported at the enclosing mapping.
  const YAML::Node* Need(const std::vector<MapField>& fields, const YAML::Node& map,
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

  std::optional<std::string> String(const YAML::Node& n, const std::string& field) {
    if (!n.IsScalar()) {
      Error(n, field, "expected a string, got " + KindOf(n));
      return std::nullopt;
    }
    return n.Scalar();
  }

  std::optional<int64_t> Int(const YAML::Node& n, const std::string& field, int64_t lo,
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

  // A duration (common/duration.h syntax) with `min` as lower bound (inclusive unless
  // `strictly_positive`) and an optional upper bound.
  std::optional<Duration> Dur(const YAML::Node& n, const std::string& field, bool strictly_positive,
                              std::optional<Duration> max = std::nullopt) {
    auto s = String(n, field);
    if (!s) return std::nullopt;
    Result<Duration> d = ParseDuration(*s);
    if (!d.ok()) {
      // ParseDuration's message echoes the text; use it only when that text is harmless.
      Error(n, field,
            Printable(*s) == *s ? d.status().message() : "invalid duration " + Quoted(*s));
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

  std::optional<std::string> Name(const YAML::Node& n, const std::string& field) {
    auto s = String(n, field);
    if (!s) return std::nullopt;
    if (!IsName(*s)) {
      Error(n, field, Quoted(*s) + " " + kNameRule);
      return std::nullopt;
    }
    return s;
  }

  std::optional<std::string> Regex(const YAML::Node& n, const std::string& field) {
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

  // label → value mapping, both [A-Za-z0-9._-]{1,63}.
  std::map<std::string, std::string> Labels(const YAML::Node& n, const std::string& path) {
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

  // ---- sections ----
  void ParseMetadata(const YAML::Node& n);
  void ParseTargets(const YAML::Node& n);
  void ParseFaults(const YAML::Node& n);
  void ParseDnsFault(const YAML::Node& n, const std::string& path, Fault* fault);
  void ParseNetworkFault(const YAML::Node& n, const std::string& path, Fault* fault);
  void ParseProcessFault(const YAML::Node& n, const std::string& path, Fault* fault);
  void ParseDependencyFault(const YAML::Node& n, const std::string& path, Fault* fault);
  void ParseToxic(const YAML::Node& n, const std::string& path,
                  faultline::v1::DependencyFault::Toxic* toxic);
  void ParseHttpFault(const YAML::Node& n, const std::string& path,
                      faultline::v1::DependencyFault::Http* http);
  std::optional<double> Share(const YAML::Node& n, const std::string& field);
  std::optional<uint32_t> Millis(const YAML::Node& n, const std::string& field, bool positive);
  void ParseNetworkMatch(const YAML::Node& n, const std::string& path,
                         faultline::v1::NetworkSelector* m);
  void Cidrs(const YAML::Node& n, const std::string& path,
             google::protobuf::RepeatedPtrField<std::string>* out);
  void Ports(const YAML::Node& n, const std::string& path,
             google::protobuf::RepeatedField<uint32_t>* out);
  void ParseDnsFaultOptions(const std::vector<MapField>& fields, const YAML::Node& n,
                            const std::string& path, faultline::v1::DnsFault* dns);
  void ParseProbes(const YAML::Node& n);
  void ParseProbe(const YAML::Node& n, const std::string& path);
  void ParseSteadyState(const YAML::Node& n);
  void ParseObjectives(const YAML::Node& n);
  void ParseAborts(const YAML::Node& n);
  void CrossChecks(const YAML::Node& root);

  // Checks a top-level list is a non-empty (when `required`) sequence.
  bool List(const YAML::Node& n, const std::string& path, bool non_empty) {
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

  std::string file_;
  std::vector<Diagnostic> errors_;
  std::vector<Diagnostic> warnings_;
  Experiment exp_;
  // Names declared, even by entries that failed validation, so that a broken declaration does not
  // also produce "unknown name" errors at every reference.
  std::set<std::string> target_names_;
  std::set<std::string> probe_names_;
  std::optional<YAML::Node> max_duration_node_;
  std::vector<std::pair<YAML::Node, YAML::Mark>> null_values_;
  bool too_many_errors_ = false;
};

// Counts documents without building nodes. Used instead of YAML::LoadAll, which in yaml-cpp 0.7
// loops forever, allocating, on some invalid input such as a lone "," (yaml-cpp issue #1040).
class DocumentCounter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { last_start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  YAML::Mark last_start = YAML::Mark::null_mark();
};

ParseOutcome Parser::Run(std::string_view text) {
  exp_.source_file = file_;
  std::vector<YAML::Node> docs;
  try {
    const std::string input(text);
    YAML::Node first = YAML::Load(input);
    if (!first.IsNull()) {
      docs.push_back(first);
      // Only ask whether a second document exists; never iterate to the end (see above).
      std::istringstream stream(input);
      YAML::Parser events(stream);
      DocumentCounter counter;
      if (events.HandleNextDocument(counter) && events.HandleNextDocument(counter)) {
        Error(Pos(counter.last_start), "",
              "expected one YAML document, found more (remove the '---' separator)");
      }
    }
  } catch (const YAML::DeepRecursion& e) {
    Error(Pos(e.mark), "", "YAML nested too deeply");
  } catch (const YAML::Exception& e) {
    Error(Pos(e.mark), "", "invalid YAML: " + Printable(e.msg, 200));
  } catch (const std::exception& e) {
    Error(SourcePos{file_, 0, 0}, "", std::string("invalid YAML: ") + e.what());
  }
  if (errors_.empty()) {
    if (docs.empty()) {
      Error(SourcePos{file_, 1, 1}, "",
            "no experiment found (empty document): expected a mapping with apiVersion: " +
                std::string(kApiVersion) + " and kind: Experiment");
    } else {
      const YAML::Node& root = docs[0];
      try {
        auto top = Map(root, "",
                       {"apiVersion", "kind", "metadata", "targets", "faults", "probes",
                        "steady_state", "objectives", "abort", "max_duration"});
        if (!top) {
          errors_.back().message =
              "the file must be a YAML mapping (apiVersion, kind, ...), got " + KindOf(root);
        } else {
          if (auto* v = Need(*top, root, "", "apiVersion")) {
            if (auto s = String(*v, "apiVersion")) {
              if (*s != kApiVersion) {
                Error(*v, "apiVersion",
                      "must be " + std::string(kApiVersion) + ", got " + Quoted(*s));
              }
              exp_.api_version = *s;
            }
          }
          if (auto* v = Need(*top, root, "", "kind")) {
            if (auto s = String(*v, "kind"); s && *s != "Experiment") {
              Error(*v, "kind", "must be Experiment, got " + Quoted(*s));
            }
          }
          if (auto* v = Need(*top, root, "", "metadata")) ParseMetadata(*v);
          if (auto* v = Need(*top, root, "", "targets")) ParseTargets(*v);
          if (auto* v = Need(*top, root, "", "probes")) ParseProbes(*v);
          if (auto* v = Need(*top, root, "", "faults")) ParseFaults(*v);
          if (auto* v = Find(*top, "steady_state"); v && !v->IsNull()) {
            ParseSteadyState(*v);
          } else {
            Warn(root, "steady_state",
                 "no steady-state probes: faults are injected without first checking that the "
                 "system is healthy");
          }
          if (auto* v = Need(*top, root, "", "objectives")) ParseObjectives(*v);
          if (auto* v = Find(*top, "abort"); v && !v->IsNull()) ParseAborts(*v);
          if (auto* v = Find(*top, "max_duration")) {
            if (v->IsNull()) {
              Error(*v, "max_duration", "requires a value");
            } else if (auto d = Dur(*v, "max_duration", true)) {
              exp_.max_duration = d;
              max_duration_node_.emplace(*v);
            }
          }
          CrossChecks(root);
        }
      } catch (const std::exception& e) {
        // yaml-cpp throws on some malformed node accesses; never let that escape.
        Error(SourcePos{file_, 0, 0}, "", std::string("cannot read experiment: ") + e.what());
      }
    }
  }

  auto by_position = [](const Diagnostic& a, const Diagnostic& b) {
    return std::pair(a.pos.line, a.pos.column) < std::pair(b.pos.line, b.pos.column);
  };
  std::stable_sort(errors_.begin(), errors_.end(), by_position);
  if (too_many_errors_) {
    errors_.push_back(
        {SourcePos{file_, 0, 0}, "",
         "too many errors; only the first " + std::to_string(kMaxErrors) + " are shown"});
  }
  std::stable_sort(warnings_.begin(), warnings_.end(), by_position);
  ParseOutcome out;
  out.errors = std::move(errors_);
  out.warnings = std::move(warnings_);
  if (out.errors.empty()) out.experiment = std::move(exp_);
  return out;
}

void Parser::ParseMetadata(const YAML::Node& n) {
  auto fields = Map(n, "metadata", {"name", "description", "labels"});
  if (!fields) return;
  if (auto* v = Need(*fields, n, "metadata", "name")) {
    if (auto s = Name(*v, "metadata.name")) exp_.name = *s;
  }
  if (auto* v = Find(*fields, "description"); v && !v->IsNull()) {
    if (auto s = String(*v, "metadata.description")) {
      if (s->size() > kMaxDescriptionLength) {
        Error(*v, "metadata.description", "longer than 4096 characters");
      } else {
        exp_.description = *s;
      }
    }
  }
  if (auto* v = Find(*fields, "labels"); v && !v->IsNull()) {
    exp_.labels = Labels(*v, "metadata.labels");
  }
}

void Parser::ParseTargets(const YAML::Node& n) {
  auto entries = MapOf(n, "targets", [&](const YAML::Node& key_node, const std::string& key) {
    if (IsName(key)) return true;
    Error(key_node, "targets." + Printable(key), "target name " + Quoted(key) + " " + kNameRule);
    return false;
  });
  if (!entries) return;
  if (entries->empty() && n.size() == 0) Error(n, "targets", "needs at least one target");
  for (const MapField& e : *entries) {
    target_names_.insert(e.key);
    const std::string path = "targets." + e.key;
    Target t;
    t.name = e.key;
    t.pos = Pos(e.key_node);
    auto fields = Map(e.value, path, {"selector", "mode"});
    if (!fields) continue;
    size_t before = errors_.size();
    if (auto* v = Need(*fields, e.value, path, "selector")) {
      t.selector = Labels(*v, path + ".selector");
      if (v->IsMap() && v->size() == 0) {
        Error(*v, path + ".selector",
              "must select by at least one label (an empty selector would match every agent)");
      }
    }
    if (auto* v = Find(*fields, "mode"); v && !v->IsNull()) {
      if (auto s = String(*v, path + ".mode")) {
        const std::string& m = *s;
        bool good = true;
        if (m == "all") {
          t.mode.kind = TargetMode::Kind::kAll;
        } else if (m == "one") {
          t.mode.kind = TargetMode::Kind::kOne;
        } else if (m.rfind("fixed:", 0) == 0) {
          auto nv = ParseInt(std::string_view(m).substr(6), 1, 100000);
          t.mode = {TargetMode::Kind::kFixed, nv ? static_cast<int>(*nv) : 0};
          good = nv.has_value();
        } else if (m.rfind("percent:", 0) == 0) {
          auto pv = ParseInt(std::string_view(m).substr(8), 1, 100);
          t.mode = {TargetMode::Kind::kPercent, pv ? static_cast<int>(*pv) : 0};
          good = pv.has_value();
        } else {
          good = false;
        }
        if (!good) {
          Error(*v, path + ".mode",
                "must be all, one, fixed:N (N >= 1) or percent:P (P from 1 to 100), got " +
                    Quoted(m));
        }
      }
    }
    if (errors_.size() == before) exp_.targets.push_back(std::move(t));
  }
}

void Parser::ParseFaults(const YAML::Node& n) {
  if (!List(n, "faults", true)) return;
  std::set<std::string> names;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string path = Index("faults", i);
    auto fields =
        Map(item, path, {"name", "target", "duration", "dns", "network", "dependency", "process"});
    if (!fields) continue;
    size_t before = errors_.size();
    Fault f;
    f.pos = Pos(item);
    if (auto* v = Need(*fields, item, path, "name")) {
      if (auto s = Name(*v, path + ".name")) {
        if (!names.insert(*s).second)
          Error(*v, path + ".name", "duplicate fault name " + Quoted(*s));
        f.name = *s;
      }
    }
    if (auto* v = Need(*fields, item, path, "target")) {
      if (auto s = String(*v, path + ".target")) {
        if (!target_names_.count(*s)) {
          Error(*v, path + ".target", "unknown target " + Quoted(*s) + " (not defined in targets)");
        }
        f.target = *s;
      }
    }
    if (auto* v = Need(*fields, item, path, "duration")) {
      if (auto d = Dur(*v, path + ".duration", true, kMaxFaultDuration)) f.duration = *d;
    }
    const MapField* kind =
        OneKind(*fields, item, path, {"dns", "network", "dependency", "process"}, "a fault",
                "a fault needs exactly one kind: dns, network, dependency or process");
    if (kind == nullptr) {
      // reported
    } else if (kind->key == "dns") {
      ParseDnsFault(kind->value, path + ".dns", &f);
    } else if (kind->key == "network") {
      ParseNetworkFault(kind->value, path + ".network", &f);
    } else if (kind->key == "process") {
      ParseProcessFault(kind->value, path + ".process", &f);
    } else {
      ParseDependencyFault(kind->value, path + ".dependency", &f);
    }
    if (errors_.size() == before) exp_.faults.push_back(std::move(f));
  }
}

void Parser::ParseDnsFault(const YAML::Node& n, const std::string& path, Fault* fault) {
  auto fields = Map(n, path,
                    {"domains", "mode", "match", "record_types", "addresses", "ttl", "delay",
                     "jitter", "probability", "scope"});
  if (!fields) return;
  faultline::v1::DnsFault* dns = fault->spec.mutable_dns();
  if (auto* v = Need(*fields, n, path, "domains")) {
    const std::string dpath = path + ".domains";
    if (!v->IsSequence()) {
      Error(*v, dpath, "expected a list of DNS names, got " + KindOf(*v));
    } else if (v->size() == 0 || v->size() > kMaxDomains) {
      Error(*v, dpath, "needs 1 to 64 names, got " + std::to_string(v->size()));
    } else {
      for (size_t i = 0; i < v->size(); ++i) {
        const YAML::Node d = (*v)[i];
        auto s = String(d, Index(dpath, i));
        if (!s) continue;
        if (auto problem = DnsNameProblem(*s, true)) {
          Error(d, Index(dpath, i), *problem);
          continue;
        }
        dns->add_domains(*s);
      }
    }
  }
  if (auto* v = Need(*fields, n, path, "mode")) {
    if (auto s = String(*v, path + ".mode")) {
      static const std::vector<std::pair<std::string, faultline::v1::DnsFault::Mode>> kModes = {
          {"drop", faultline::v1::DnsFault::DROP},
          {"nxdomain", faultline::v1::DnsFault::NXDOMAIN},
          {"servfail", faultline::v1::DnsFault::SERVFAIL},
          {"nodata", faultline::v1::DnsFault::NODATA},
          {"refused", faultline::v1::DnsFault::REFUSED},
          {"spoof", faultline::v1::DnsFault::SPOOF},
          {"delay", faultline::v1::DnsFault::DELAY},
      };
      auto it =
          std::find_if(kModes.begin(), kModes.end(), [&](const auto& m) { return m.first == *s; });
      if (it == kModes.end()) {
        Error(*v, path + ".mode",
              "unknown DNS fault mode " + Quoted(*s) +
                  " (expected drop, nxdomain, servfail, nodata, refused, spoof or delay)");
      } else {
        dns->set_mode(it->second);
      }
    }
  }
  ParseDnsFaultOptions(*fields, n, path, dns);
}

// The optional parts of a dns fault: matching, spoofed answers, delays, probability, scope.
void Parser::ParseDnsFaultOptions(const std::vector<MapField>& fields, const YAML::Node& n,
                                  const std::string& path, faultline::v1::DnsFault* dns) {
  using faultline::v1::DnsFault;
  if (auto* v = Find(fields, "match")) {
    if (auto s = String(*v, path + ".match")) {
      if (*s == "exact") {
        dns->set_match(DnsFault::AS_WRITTEN);
      } else if (*s == "suffix") {
        dns->set_match(DnsFault::SUFFIX);
      } else {
        Error(*v, path + ".match",
              "unknown match " + Quoted(*s) +
                  " (expected exact: names as written, '*.x' for subdomains of x; or suffix: "
                  "each name and all its subdomains)");
      }
    }
  }
  if (auto* v = Find(fields, "record_types")) {
    const std::string tpath = path + ".record_types";
    static const std::set<std::string> kTypes = {"A",   "AAAA",  "CNAME", "MX",    "TXT",  "SRV",
                                                 "NS",  "PTR",   "SOA",   "HTTPS", "SVCB", "CAA",
                                                 "ANY", "NAPTR", "DS",    "DNSKEY"};
    if (!v->IsSequence() || v->size() == 0) {
      Error(*v, tpath, "expected a non-empty list of record types, e.g. [AAAA]");
    } else {
      for (size_t i = 0; i < v->size(); ++i) {
        auto s = String((*v)[i], Index(tpath, i));
        if (!s) continue;
        std::string upper = *s;
        for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (!kTypes.count(upper)) {
          Error((*v)[i], Index(tpath, i),
                "unknown record type " + Quoted(*s) +
                    " (expected one of A, AAAA, CNAME, MX, TXT, SRV, NS, PTR, SOA, HTTPS, SVCB, "
                    "CAA, ANY, NAPTR, DS, DNSKEY)");
          continue;
        }
        dns->add_record_types(upper);
      }
    }
  }
  const bool spoof = dns->mode() == DnsFault::SPOOF;
  if (auto* v = Find(fields, "addresses")) {
    const std::string apath = path + ".addresses";
    if (!spoof) {
      Error(*v, apath, "only for mode spoof");
    } else if (!v->IsSequence() || v->size() == 0 || v->size() > 16) {
      Error(*v, apath, "expected a list of 1 to 16 IPv4/IPv6 addresses");
    } else {
      for (size_t i = 0; i < v->size(); ++i) {
        auto s = String((*v)[i], Index(apath, i));
        if (!s) continue;
        unsigned char buf[16];
        if (inet_pton(AF_INET, s->c_str(), buf) != 1 && inet_pton(AF_INET6, s->c_str(), buf) != 1) {
          Error((*v)[i], Index(apath, i), Quoted(*s) + " is not a numeric IPv4 or IPv6 address");
          continue;
        }
        dns->add_spoof_addresses(*s);
      }
    }
  } else if (spoof) {
    Error(n, path + ".addresses", "missing required field (mode spoof answers with these)");
  }
  if (auto* v = Find(fields, "ttl")) {
    if (!spoof) {
      Error(*v, path + ".ttl", "only for mode spoof");
    } else if (auto d = Dur(*v, path + ".ttl", true, std::chrono::hours(24))) {
      dns->set_spoof_ttl_s(static_cast<uint32_t>(
          std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(*d).count())));
    }
  }
  const Duration kMaxDnsDelay = std::chrono::seconds(60);
  for (const char* key : {"delay", "jitter"}) {
    const YAML::Node* v = Find(fields, key);
    if (!v) continue;
    const std::string field = Sub(path, key);
    if (dns->mode() == DnsFault::DROP) {
      Error(*v, field, "mode drop sends no answer, so it cannot be delayed");
      continue;
    }
    auto d = Dur(*v, field, false, kMaxDnsDelay);
    if (!d) continue;
    auto ms =
        static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
    if (std::string(key) == "delay") {
      dns->set_delay_ms(ms);
    } else {
      dns->set_jitter_ms(ms);
    }
  }
  if (dns->mode() == DnsFault::DELAY && dns->delay_ms() == 0 && dns->jitter_ms() == 0) {
    Error(n, path + ".delay", "mode delay needs a delay greater than 0, e.g. delay: 800ms");
  }
  if (auto* v = Find(fields, "probability")) {
    const std::string ppath = path + ".probability";
    if (auto s = String(*v, ppath)) {
      // 0.25 or 25%.
      std::string text = *s;
      double scale = 1.0;
      if (!text.empty() && text.back() == '%') {
        text.pop_back();
        scale = 100.0;
      }
      char* end = nullptr;
      double p = text.empty() ? -1 : std::strtod(text.c_str(), &end) / scale;
      if (text.empty() || end == nullptr || *end != '\0' || !(p > 0.0 && p <= 1.0)) {
        Error(*v, ppath,
              "expected a share of matching queries in (0, 1] or (0%, 100%], got " + Quoted(*s));
      } else {
        dns->set_probability(p);
      }
    }
  }
  if (auto* v = Find(fields, "scope")) {
    const std::string spath = path + ".scope";
    auto scope = Map(*v, spath, {"cgroup", "uid"});
    if (scope) {
      if (auto* c = Find(*scope, "cgroup")) {
        if (auto s = String(*c, spath + ".cgroup")) {
          static const std::regex kCgroup(R"(/?([A-Za-z0-9_.@:+-]+/)*[A-Za-z0-9_.@:+-]+/?)");
          bool dots = s->find("/../") != std::string::npos || s->starts_with("../") ||
                      s->ends_with("/..") || *s == ".." || s->find("/./") != std::string::npos ||
                      *s == "." || s->starts_with("./") || s->ends_with("/.");
          if (s->size() > 512 || !std::regex_match(*s, kCgroup) || dots) {
            Error(*c, spath + ".cgroup",
                  "expected a cgroup v2 path below /sys/fs/cgroup (e.g. "
                  "\"system.slice/orders.service\"; letters, digits, . _ - @ : +), got " +
                      Quoted(*s));
          } else {
            dns->set_cgroup(*s);
          }
        }
      }
      if (auto* u = Find(*scope, "uid")) {
        if (auto id = Int(*u, spath + ".uid", 0, 4294967294LL)) {
          dns->set_uid(static_cast<uint32_t>(*id));
        }
      }
      if (!Find(*scope, "cgroup") && !Find(*scope, "uid")) {
        Error(*v, spath, "needs cgroup or uid (or leave scope out for the whole host)");
      }
    }
  }
}

// `process:` kills or pauses processes on the target hosts: `action: kill|pause`, exactly one
// selector (`name`, `pidfile` or `cgroup`), optionally `count` or `percent` of the matches, and
// for kill `signal` (default SIGKILL) and `interval` (keep killing restarted processes).
void Parser::ParseProcessFault(const YAML::Node& n, const std::string& path, Fault* fault) {
  using faultline::v1::ProcessFault;
  auto fields = Map(
      n, path, {"action", "signal", "name", "pidfile", "cgroup", "count", "percent", "interval"});
  if (!fields) return;
  ProcessFault* proc = fault->spec.mutable_process();
  if (auto* v = Need(*fields, n, path, "action")) {
    if (auto s = String(*v, path + ".action")) {
      if (*s == "kill") {
        proc->set_action(ProcessFault::KILL);
      } else if (*s == "pause") {
        proc->set_action(ProcessFault::PAUSE);
      } else {
        Error(*v, path + ".action",
              "unknown process action " + Quoted(*s) +
                  " (expected kill: send a signal once, or pause: SIGSTOP/freeze until revert)");
      }
    }
  }
  const bool pause = proc->action() == ProcessFault::PAUSE;
  if (auto* v = Find(*fields, "signal")) {
    const std::string spath = path + ".signal";
    if (pause) {
      Error(*v, spath, "only for action kill (pause sends SIGSTOP and, at revert, SIGCONT)");
    } else if (auto s = String(*v, spath)) {
      static const std::set<std::string> kSignals = {"KILL", "TERM", "INT",  "QUIT",
                                                     "HUP",  "ABRT", "USR1", "USR2"};
      std::string upper = *s;
      for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      if (upper.rfind("SIG", 0) == 0) upper = upper.substr(3);
      if (!kSignals.count(upper)) {
        Error(*v, spath,
              "unsupported signal " + Quoted(*s) +
                  " (expected SIGKILL, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGABRT, SIGUSR1 or "
                  "SIGUSR2)");
      } else {
        proc->set_signal("SIG" + upper);
      }
    }
  }
  std::vector<const MapField*> selectors;
  for (const MapField& f : *fields) {
    if (f.key == "name" || f.key == "pidfile" || f.key == "cgroup") selectors.push_back(&f);
  }
  if (selectors.empty()) {
    Error(n, path, "a process fault needs exactly one selector: name, pidfile or cgroup");
  } else if (selectors.size() > 1) {
    Error(selectors[1]->key_node, Sub(path, selectors[1]->key),
          "a process fault has exactly one selector; this one already has '" + selectors[0]->key +
              "'");
  } else {
    const MapField& sel = *selectors[0];
    const std::string spath = Sub(path, sel.key);
    if (auto s = String(sel.value, spath)) {
      if (sel.key == "name") {
        if (s->empty() || s->size() > 255 || Printable(*s, 255) != *s ||
            s->find('/') != std::string::npos || *s == "." || *s == "..") {
          Error(sel.value, spath,
                "expected a process name or executable basename (1-255 printable characters, no "
                "'/'), got " +
                    Quoted(*s));
        } else {
          proc->set_name(*s);
        }
      } else if (sel.key == "pidfile") {
        bool dots = s->find("/../") != std::string::npos || s->ends_with("/..");
        if (s->empty() || s->front() != '/' || s->back() == '/' || s->size() > 4096 ||
            Printable(*s, 4096) != *s || dots) {
          Error(
              sel.value, spath,
              "expected an absolute path of a file holding a pid, without '..', got " + Quoted(*s));
        } else {
          proc->set_pidfile(*s);
        }
      } else {
        static const std::regex kCgroup(R"(/?([A-Za-z0-9_.@:+-]+/)*[A-Za-z0-9_.@:+-]+/?)");
        bool dots = s->find("/../") != std::string::npos || s->starts_with("../") ||
                    s->ends_with("/..") || *s == ".." || s->find("/./") != std::string::npos ||
                    *s == "." || s->starts_with("./") || s->ends_with("/.");
        if (s->size() > 512 || !std::regex_match(*s, kCgroup) || dots) {
          Error(sel.value, spath,
                "expected a cgroup v2 path below /sys/fs/cgroup (e.g. "
                "\"system.slice/kv.service\"; letters, digits, . _ - @ : +), got " +
                    Quoted(*s));
        } else {
          proc->set_cgroup(*s);
        }
      }
    }
  }
  const YAML::Node* count = Find(*fields, "count");
  const YAML::Node* percent = Find(*fields, "percent");
  if (count && percent) {
    Error(*percent, path + ".percent", "give count or percent, not both");
  } else if (count) {
    if (auto c = Int(*count, path + ".count", 1, 100000))
      proc->set_count(static_cast<uint32_t>(*c));
  } else if (percent) {
    if (auto s = String(*percent, path + ".percent")) {
      std::string text = *s;
      if (!text.empty() && text.back() == '%') text.pop_back();
      auto p = ParseInt(text, 1, 100);
      if (!p || text[0] == '-') {
        Error(*percent, path + ".percent", "expected 1% to 100%, got " + Quoted(*s));
      } else {
        proc->set_percent(static_cast<uint32_t>(*p));
      }
    }
  }
  if (auto* v = Find(*fields, "interval")) {
    const std::string ipath = path + ".interval";
    if (pause) {
      Error(*v, ipath, "only for action kill (kill restarted processes every interval)");
    } else if (auto d = Dur(*v, ipath, true, std::chrono::hours(1))) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
      if (ms < 100) {
        Error(*v, ipath, "must be at least 100ms");
      } else {
        proc->set_interval_ms(static_cast<uint32_t>(ms));
      }
    }
  }
}

// `network:` holds exactly one kind (latency, loss, blackhole, reject, partition, bandwidth) and
// an optional `match:` selecting the packets.
void Parser::ParseNetworkFault(const YAML::Node& n, const std::string& path, Fault* fault) {
  auto fields =
      Map(n, path, {"latency", "loss", "blackhole", "reject", "partition", "bandwidth", "match"});
  if (!fields) return;
  faultline::v1::NetworkFault* net = fault->spec.mutable_network();
  const MapField* kind = OneKind(
      *fields, n, path, {"latency", "loss", "blackhole", "reject", "partition", "bandwidth"},
      "a network fault",
      "a network fault needs one kind: latency, loss, blackhole, reject, partition or bandwidth");
  if (kind == nullptr) return;
  const MapField& k = *kind;
  const std::string kpath = Sub(path, k.key);
  // Parameterless kinds accept `blackhole: {}` or a bare `blackhole:`.
  auto no_params = [&](const YAML::Node& v) {
    if (v.IsNull()) return;
    Map(v, kpath, {});
  };
  if (k.key == "blackhole") {
    no_params(k.value);
    net->mutable_blackhole();
  } else if (k.key == "reject") {
    no_params(k.value);
    net->mutable_reject();
  } else if (k.key == "partition") {
    // `partition: {}` cuts match.cidrs/hosts off; `partition: {to: [group, ...]}` (and optionally
    // `from: <this fault's target>`) cuts off the agents of other target groups.
    net->mutable_partition();
    if (!k.value.IsNull()) {
      auto pf = Map(k.value, kpath, {"from", "to"});
      if (!pf) return;
      if (auto* v = Find(*pf, "from"); v && !v->IsNull()) {
        if (auto s = String(*v, kpath + ".from"); s && *s != fault->target) {
          Error(*v, kpath + ".from",
                "must be this fault's target " + Quoted(fault->target) + ", got " + Quoted(*s) +
                    " (the partition is applied on the target's agents)");
        }
      }
      if (auto* v = Find(*pf, "to"); v && !v->IsNull()) {
        std::vector<YAML::Node> items;
        if (v->IsSequence()) {
          for (const auto& item : *v) items.push_back(item);
        } else {
          items.push_back(*v);
        }
        for (size_t i = 0; i < items.size(); ++i) {
          const std::string ipath = v->IsSequence() ? Index(kpath + ".to", i) : kpath + ".to";
          auto s = String(items[i], ipath);
          if (!s) continue;
          if (!target_names_.count(*s)) {
            Error(items[i], ipath, "unknown target " + Quoted(*s) + " (not defined in targets)");
          } else if (*s == fault->target) {
            Error(items[i], ipath, "a target cannot be partitioned from itself");
          } else {
            fault->partition_peer_targets.push_back(*s);
          }
        }
      }
    }
  } else if (k.key == "latency") {
    auto lf = Map(k.value, kpath, {"delay", "jitter", "distribution", "correlation", "reorder"});
    if (!lf) return;
    auto* l = net->mutable_latency();
    Duration delay{};
    if (auto* v = Need(*lf, k.value, kpath, "delay")) {
      if (auto d = Dur(*v, kpath + ".delay", true, Duration(std::chrono::seconds(60)))) {
        delay = *d;
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(*d).count();
        if (us < 1) {
          Error(*v, kpath + ".delay", "must be at least 1us");
        } else {
          l->set_delay_us(static_cast<uint32_t>(us));
        }
      }
    }
    if (auto* v = Find(*lf, "jitter"); v && !v->IsNull()) {
      if (auto d = Dur(*v, kpath + ".jitter", false)) {
        if (*d > delay) {
          Error(*v, kpath + ".jitter", "must not exceed the delay (" + FormatDuration(delay) + ")");
        } else {
          l->set_jitter_us(static_cast<uint32_t>(
              std::chrono::duration_cast<std::chrono::microseconds>(*d).count()));
        }
      }
    }
    if (auto* v = Find(*lf, "distribution"); v && !v->IsNull()) {
      if (auto s = String(*v, kpath + ".distribution")) {
        if (*s == "uniform") {
          l->set_distribution(faultline::v1::NetworkFault::Latency::UNIFORM);
        } else if (*s == "normal") {
          l->set_distribution(faultline::v1::NetworkFault::Latency::NORMAL);
        } else {
          Error(*v, kpath + ".distribution", "expected uniform or normal, got " + Quoted(*s));
        }
      }
    }
    if (auto* v = Find(*lf, "correlation"); v && !v->IsNull()) {
      if (auto c = Int(*v, kpath + ".correlation", 0, 100)) {
        l->set_correlation_percent(static_cast<uint32_t>(*c));
      }
    }
    if (auto* v = Find(*lf, "reorder"); v && !v->IsNull()) {
      if (auto s = String(*v, kpath + ".reorder")) {
        if (*s == "true" || *s == "false") {
          l->set_reorder(*s == "true");
        } else {
          Error(*v, kpath + ".reorder", "expected true or false, got " + Quoted(*s));
        }
      }
    }
  } else if (k.key == "loss") {
    auto lf = Map(k.value, kpath, {"percent", "correlation"});
    if (!lf) return;
    if (auto* v = Find(*lf, "correlation"); v && !v->IsNull()) {
      if (auto c = Int(*v, kpath + ".correlation", 0, 100)) {
        net->mutable_loss()->set_correlation_percent(static_cast<uint32_t>(*c));
      }
    }
    if (auto* v = Need(*lf, k.value, kpath, "percent")) {
      if (auto s = String(*v, kpath + ".percent")) {
        char* end = nullptr;
        double p = std::strtod(s->c_str(), &end);
        if (s->empty() || end != s->c_str() + s->size() || !(p >= 0.01 && p <= 100.0)) {
          Error(*v, kpath + ".percent", "expected a number from 0.01 to 100, got " + Quoted(*s));
        } else {
          net->mutable_loss()->set_percent(p);
        }
      }
    }
  } else if (k.key == "bandwidth") {
    auto bf = Map(k.value, kpath, {"rate", "burst"});
    if (!bf) return;
    auto* b = net->mutable_bandwidth();
    if (auto* v = Need(*bf, k.value, kpath, "rate")) {
      if (auto s = String(*v, kpath + ".rate")) {
        auto rate = ParseRate(*s);
        if (!rate || *rate < 1000) {
          Error(*v, kpath + ".rate",
                "expected a rate of at least 8kbit (e.g. 1mbit, 500kbit, 2mbps = bytes/s), got " +
                    Quoted(*s));
        } else {
          b->set_rate_bytes_per_second(*rate);
        }
      }
    }
    if (auto* v = Find(*bf, "burst"); v && !v->IsNull()) {
      if (auto s = String(*v, kpath + ".burst")) {
        auto burst = ParseBytes(*s);
        if (!burst || *burst < 1500 || *burst > (1u << 30)) {
          Error(*v, kpath + ".burst",
                "expected a size from 1500b to 1gb (e.g. 32kb), got " + Quoted(*s));
        } else {
          b->set_burst_bytes(static_cast<uint32_t>(*burst));
        }
      }
    }
  }
  if (auto* v = Find(*fields, "match"); v && !v->IsNull()) {
    ParseNetworkMatch(*v, path + ".match", net->mutable_match());
  }
  const auto& m = net->match();
  if (net->has_partition()) {
    if (m.cidrs_size() == 0 && m.hosts_size() == 0 && fault->partition_peer_targets.empty()) {
      Error(n, path + ".match",
            "a partition needs the peers to cut off: partition.to (target groups), match.cidrs or "
            "match.hosts");
    }
    if (m.direction() == faultline::v1::NetworkSelector::EGRESS ||
        m.direction() == faultline::v1::NetworkSelector::INGRESS) {
      Error(n, path + ".match.direction", "a partition always cuts both directions");
    }
  }
}

// A share: 0.3 or 30%, in (0, 1].
std::optional<double> Parser::Share(const YAML::Node& n, const std::string& field) {
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
  if (text.empty() || end == nullptr || *end != '\0' || !(p > 0.0 && p <= 1.0)) {
    Error(n, field, "expected a share in (0, 1] or (0%, 100%], got " + Quoted(*s));
    return std::nullopt;
  }
  return p;
}

// A duration in whole milliseconds, at most 60 s.
std::optional<uint32_t> Parser::Millis(const YAML::Node& n, const std::string& field,
                                       bool positive) {
  auto d = Dur(n, field, positive, Duration(std::chrono::seconds(60)));
  if (!d) return std::nullopt;
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::milliseconds>(*d).count());
}

// `dependency:` a match (the dependency: hosts/cidrs and remote_ports), toxics and/or http.
void Parser::ParseDependencyFault(const YAML::Node& n, const std::string& path, Fault* fault) {
  auto fields = Map(n, path, {"match", "toxics", "http"});
  if (!fields) return;
  faultline::v1::DependencyFault* dep = fault->spec.mutable_dependency();
  if (auto* v = Need(*fields, n, path, "match")) {
    const std::string mpath = path + ".match";
    ParseNetworkMatch(*v, mpath, dep->mutable_match());
    const auto& m = dep->match();
    if (m.direction() != faultline::v1::NetworkSelector::DIRECTION_UNSPECIFIED) {
      Error(*v, mpath + ".direction", "not used: the proxy takes outbound connections");
    }
    if (m.protocol() != faultline::v1::NetworkSelector::PROTOCOL_ANY &&
        m.protocol() != faultline::v1::NetworkSelector::TCP) {
      Error(*v, mpath + ".protocol", "the fault proxy carries TCP only");
    }
    if (m.local_ports_size() > 0) Error(*v, mpath + ".local_ports", "not used by the proxy");
    if (v->IsMap() && m.remote_ports_size() == 0) {
      Error(*v, mpath + ".remote_ports",
            "name the dependency's port(s), e.g. remote_ports: [8000]");
    }
  }
  if (auto* v = Find(*fields, "toxics"); v && !v->IsNull()) {
    const std::string tpath = path + ".toxics";
    if (!v->IsSequence()) {
      Error(*v, tpath, "expected a list of toxics, got " + KindOf(*v));
    } else if (v->size() > 16) {
      Error(*v, tpath, "at most 16 toxics");
    } else {
      for (size_t i = 0; i < v->size(); ++i) {
        ParseToxic((*v)[i], Index(tpath, i), dep->add_toxics());
      }
    }
  }
  if (auto* v = Find(*fields, "http"); v && !v->IsNull()) {
    ParseHttpFault(*v, path + ".http", dep->mutable_http());
  }
  if (dep->toxics_size() == 0 && !dep->has_http() && !Find(*fields, "toxics") &&
      !Find(*fields, "http")) {
    Error(n, path, "a dependency fault needs toxics or an http section");
  }
}

void Parser::ParseToxic(const YAML::Node& n, const std::string& path,
                        faultline::v1::DependencyFault::Toxic* t) {
  using Toxic = faultline::v1::DependencyFault::Toxic;
  static constexpr std::string_view kKinds[] = {"latency",    "bandwidth",  "reset_peer", "timeout",
                                                "slow_close", "limit_data", "slicer"};
  auto fields = Map(n, path,
                    {"direction", "toxicity", "latency", "bandwidth", "reset_peer", "timeout",
                     "slow_close", "limit_data", "slicer"});
  if (!fields) return;
  if (auto* v = Find(*fields, "direction"); v && !v->IsNull()) {
    if (auto s = String(*v, path + ".direction")) {
      if (*s == "upstream") {
        t->set_direction(Toxic::UPSTREAM);
      } else if (*s == "downstream") {
        t->set_direction(Toxic::DOWNSTREAM);
      } else {
        Error(*v, path + ".direction",
              "expected upstream (to the dependency) or downstream (to the client), got " +
                  Quoted(*s));
      }
    }
  }
  if (auto* v = Find(*fields, "toxicity"); v && !v->IsNull()) {
    if (auto p = Share(*v, path + ".toxicity")) t->set_toxicity(*p);
  }
  const MapField* kind = OneKind(*fields, n, path, {std::begin(kKinds), std::end(kKinds)},
                                 "a toxic",
                                 "a toxic needs one kind: latency, bandwidth, reset_peer, timeout, "
                                 "slow_close, limit_data or slicer");
  if (kind == nullptr) return;
  const MapField& k = *kind;
  const std::string kpath = Sub(path, k.key);
  const YAML::Node empty(YAML::NodeType::Map);
  const YAML::Node& body = k.value.IsNull() ? empty : k.value;
  if (k.key == "latency") {
    auto lf = Map(body, kpath, {"delay", "jitter"});
    if (!lf) return;
    auto* l = t->mutable_latency();
    if (auto* v = Need(*lf, k.value, kpath, "delay")) {
      if (auto d = Dur(*v, kpath + ".delay", true, Duration(std::chrono::seconds(60)))) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(*d).count();
        if (us < 1) {
          Error(*v, kpath + ".delay", "must be at least 1us");
        } else {
          l->set_latency_us(static_cast<uint32_t>(us));
        }
      }
    }
    if (auto* v = Find(*lf, "jitter"); v && !v->IsNull()) {
      if (auto d = Dur(*v, kpath + ".jitter", false, Duration(std::chrono::seconds(60)))) {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(*d).count();
        if (static_cast<uint64_t>(us) > l->latency_us()) {
          Error(*v, kpath + ".jitter", "must not exceed the delay");
        } else {
          l->set_jitter_us(static_cast<uint32_t>(us));
        }
      }
    }
  } else if (k.key == "bandwidth") {
    auto bf = Map(body, kpath, {"rate"});
    if (!bf) return;
    if (auto* v = Need(*bf, k.value, kpath, "rate")) {
      if (auto s = String(*v, kpath + ".rate")) {
        auto rate = ParseRate(*s);
        if (!rate || *rate < 1) {
          Error(*v, kpath + ".rate",
                "expected a rate such as 1mbit, 500kbit or 100kbps (= bytes/s), got " + Quoted(*s));
        } else {
          t->mutable_bandwidth()->set_rate_bytes_per_second(*rate);
        }
      }
    }
  } else if (k.key == "reset_peer" || k.key == "timeout") {
    auto rf = Map(body, kpath, {"after"});
    if (!rf) return;
    uint32_t ms = 0;
    if (auto* v = Find(*rf, "after"); v && !v->IsNull()) {
      if (auto m = Millis(*v, kpath + ".after", false)) ms = *m;
    }
    if (k.key == "reset_peer") {
      t->mutable_reset_peer()->set_timeout_ms(ms);
    } else {
      t->mutable_timeout()->set_timeout_ms(ms);
    }
  } else if (k.key == "slow_close") {
    auto sf = Map(body, kpath, {"delay"});
    if (!sf) return;
    if (auto* v = Need(*sf, k.value, kpath, "delay")) {
      if (auto m = Millis(*v, kpath + ".delay", true)) t->mutable_slow_close()->set_delay_ms(*m);
    }
  } else if (k.key == "limit_data") {
    auto lf = Map(body, kpath, {"bytes"});
    if (!lf) return;
    if (auto* v = Need(*lf, k.value, kpath, "bytes")) {
      if (auto s = String(*v, kpath + ".bytes")) {
        auto bytes = ParseBytes(*s);
        if (!bytes || *bytes < 1) {
          Error(*v, kpath + ".bytes",
                "expected a size of at least 1 byte (e.g. 10kb), got " + Quoted(*s));
        } else {
          t->mutable_limit_data()->set_bytes(*bytes);
        }
      }
    }
  } else if (k.key == "slicer") {
    auto sf = Map(body, kpath, {"average_size", "size_variation", "delay"});
    if (!sf) return;
    auto* sl = t->mutable_slicer();
    if (auto* v = Need(*sf, k.value, kpath, "average_size")) {
      if (auto a = Int(*v, kpath + ".average_size", 1, 1 << 20)) {
        sl->set_average_size(static_cast<uint32_t>(*a));
      }
    }
    if (auto* v = Find(*sf, "size_variation"); v && !v->IsNull()) {
      if (auto a = Int(*v, kpath + ".size_variation", 0, 1 << 20)) {
        if (sl->average_size() > 0 && *a >= sl->average_size()) {
          Error(*v, kpath + ".size_variation", "must be smaller than average_size");
        } else {
          sl->set_size_variation(static_cast<uint32_t>(*a));
        }
      }
    }
    if (auto* v = Find(*sf, "delay"); v && !v->IsNull()) {
      if (auto d = Dur(*v, kpath + ".delay", false, Duration(std::chrono::seconds(1)))) {
        sl->set_delay_us(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(*d).count()));
      }
    }
  }
}

// `http:` aborts (status, body, percent), a delay (delay, percent), methods, path_prefix.
void Parser::ParseHttpFault(const YAML::Node& n, const std::string& path,
                            faultline::v1::DependencyFault::Http* h) {
  auto fields = Map(n, path, {"abort", "delay", "methods", "path_prefix"});
  if (!fields) return;
  if (auto* v = Find(*fields, "abort"); v && !v->IsNull()) {
    const std::string apath = path + ".abort";
    // One abort as a mapping, or several as a list.
    std::vector<YAML::Node> items;
    if (v->IsSequence()) {
      for (size_t i = 0; i < v->size(); ++i) items.push_back((*v)[i]);
    } else {
      items.push_back(*v);
    }
    if (items.empty() || items.size() > 8) Error(*v, apath, "expected 1 to 8 aborts");
    double total = 0.0;
    for (size_t i = 0; i < items.size() && i < 8; ++i) {
      const std::string ipath = v->IsSequence() ? Index(apath, i) : apath;
      auto af = Map(items[i], ipath, {"status", "body", "percent"});
      if (!af) continue;
      auto* a = h->add_aborts();
      if (auto* s = Need(*af, items[i], ipath, "status")) {
        if (auto code = Int(*s, ipath + ".status", 400, 599))
          a->set_status(static_cast<uint32_t>(*code));
      }
      if (auto* b = Find(*af, "body"); b && !b->IsNull()) {
        if (auto body = String(*b, ipath + ".body")) {
          if (body->size() > 4096) {
            Error(*b, ipath + ".body", "at most 4096 bytes");
          } else {
            a->set_body(*body);
          }
        }
      }
      if (auto* p = Need(*af, items[i], ipath, "percent")) {
        if (auto share = Share(*p, ipath + ".percent")) {
          a->set_percent(*share * 100.0);
          total += *share;
          if (total > 1.0 + 1e-9) Error(*p, ipath + ".percent", "the aborts add up to over 100%");
        }
      }
    }
  }
  if (auto* v = Find(*fields, "delay"); v && !v->IsNull()) {
    const std::string dpath = path + ".delay";
    auto df = Map(*v, dpath, {"delay", "percent"});
    if (df) {
      if (auto* d = Need(*df, *v, dpath, "delay")) {
        if (auto ms = Millis(*d, dpath + ".delay", true)) h->set_delay_ms(*ms);
      }
      h->set_delay_percent(100.0);
      if (auto* p = Find(*df, "percent"); p && !p->IsNull()) {
        if (auto share = Share(*p, dpath + ".percent")) h->set_delay_percent(*share * 100.0);
      }
    }
  }
  if (auto* v = Find(*fields, "methods"); v && !v->IsNull()) {
    const std::string mpath = path + ".methods";
    if (!v->IsSequence() || v->size() > 16) {
      Error(*v, mpath, "expected a list of at most 16 HTTP methods");
    } else {
      for (size_t i = 0; i < v->size(); ++i) {
        auto s = String((*v)[i], Index(mpath, i));
        if (!s) continue;
        if (s->empty() || s->size() > 32 ||
            !std::all_of(s->begin(), s->end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
          Error((*v)[i], Index(mpath, i),
                "expected an upper-case method such as GET, got " + Quoted(*s));
          continue;
        }
        h->add_methods(*s);
      }
    }
  }
  if (auto* v = Find(*fields, "path_prefix"); v && !v->IsNull()) {
    if (auto s = String(*v, path + ".path_prefix")) {
      if (s->empty() || s->front() != '/' || s->size() > 1024 ||
          std::any_of(s->begin(), s->end(), [](char c) { return c <= ' ' || c == 0x7f; })) {
        Error(*v, path + ".path_prefix",
              "expected a path starting with '/' without spaces, got " + Quoted(*s));
      } else {
        h->set_path_prefix(*s);
      }
    }
  }
  if (h->aborts_size() == 0 && h->delay_ms() == 0 && !Find(*fields, "abort") &&
      !Find(*fields, "delay")) {
    Error(n, path, "needs an abort or a delay");
  }
}

void Parser::Cidrs(const YAML::Node& n, const std::string& path,
                   google::protobuf::RepeatedPtrField<std::string>* out) {
  if (!n.IsSequence()) {
    Error(n, path, "expected a list of addresses or CIDRs, got " + KindOf(n));
    return;
  }
  if (n.size() > 256) {
    Error(n, path, "at most 256 entries");
    return;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    auto s = String(n[i], Index(path, i));
    if (!s) continue;
    if (!IsCidr(*s)) {
      Error(n[i], Index(path, i), Quoted(*s) + " is not an IPv4/IPv6 address or CIDR");
      continue;
    }
    out->Add(std::string(*s));
  }
}

void Parser::Ports(const YAML::Node& n, const std::string& path,
                   google::protobuf::RepeatedField<uint32_t>* out) {
  if (!n.IsSequence()) {
    Error(n, path, "expected a list of ports, got " + KindOf(n));
    return;
  }
  if (n.size() > 64) {
    Error(n, path, "at most 64 ports");
    return;
  }
  for (size_t i = 0; i < n.size(); ++i) {
    if (auto p = Int(n[i], Index(path, i), 1, 65535)) out->Add(static_cast<uint32_t>(*p));
  }
}

void Parser::ParseNetworkMatch(const YAML::Node& n, const std::string& path,
                               faultline::v1::NetworkSelector* m) {
  auto fields = Map(n, path,
                    {"direction", "protocol", "cidrs", "hosts", "remote_ports", "local_ports",
                     "exclude", "resolve_interval"});
  if (!fields) return;
  using Sel = faultline::v1::NetworkSelector;
  if (auto* v = Find(*fields, "direction"); v && !v->IsNull()) {
    if (auto s = String(*v, path + ".direction")) {
      if (*s == "egress") {
        m->set_direction(Sel::EGRESS);
      } else if (*s == "ingress") {
        m->set_direction(Sel::INGRESS);
      } else if (*s == "both") {
        m->set_direction(Sel::BOTH);
      } else {
        Error(*v, path + ".direction", "expected egress, ingress or both, got " + Quoted(*s));
      }
    }
  }
  if (auto* v = Find(*fields, "protocol"); v && !v->IsNull()) {
    if (auto s = String(*v, path + ".protocol")) {
      if (*s == "tcp") {
        m->set_protocol(Sel::TCP);
      } else if (*s == "udp") {
        m->set_protocol(Sel::UDP);
      } else if (*s == "icmp") {
        m->set_protocol(Sel::ICMP);
      } else if (*s == "any") {
        m->set_protocol(Sel::PROTOCOL_ANY);
      } else {
        Error(*v, path + ".protocol", "expected tcp, udp, icmp or any, got " + Quoted(*s));
      }
    }
  }
  if (auto* v = Find(*fields, "cidrs"); v && !v->IsNull())
    Cidrs(*v, path + ".cidrs", m->mutable_cidrs());
  if (auto* v = Find(*fields, "exclude"); v && !v->IsNull()) {
    Cidrs(*v, path + ".exclude", m->mutable_exclude_cidrs());
  }
  if (auto* v = Find(*fields, "hosts"); v && !v->IsNull()) {
    const std::string hpath = path + ".hosts";
    if (!v->IsSequence()) {
      Error(*v, hpath, "expected a list of host names, got " + KindOf(*v));
    } else if (v->size() > 16) {
      Error(*v, hpath, "at most 16 host names");
    } else {
      for (size_t i = 0; i < v->size(); ++i) {
        auto s = String((*v)[i], Index(hpath, i));
        if (!s) continue;
        if (auto problem = DnsNameProblem(*s, false)) {
          Error((*v)[i], Index(hpath, i), *problem);
          continue;
        }
        m->add_hosts(*s);
      }
    }
  }
  if (auto* v = Find(*fields, "remote_ports"); v && !v->IsNull()) {
    Ports(*v, path + ".remote_ports", m->mutable_remote_ports());
  }
  if (auto* v = Find(*fields, "local_ports"); v && !v->IsNull()) {
    Ports(*v, path + ".local_ports", m->mutable_local_ports());
  }
  if ((m->remote_ports_size() > 0 || m->local_ports_size() > 0) && m->protocol() == Sel::ICMP) {
    Error(n, path + ".protocol", "ports need protocol tcp, udp or any, not icmp");
  }
  if (auto* v = Find(*fields, "resolve_interval"); v && !v->IsNull()) {
    if (auto d = Dur(*v, path + ".resolve_interval", true, Duration(std::chrono::hours(1)))) {
      if (*d < std::chrono::milliseconds(100)) {
        Error(*v, path + ".resolve_interval", "must be at least 100ms");
      } else {
        m->set_resolve_interval_ms(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(*d).count()));
      }
    }
  }
}

void Parser::ParseProbes(const YAML::Node& n) {
  if (!List(n, "probes", true)) return;
  for (size_t i = 0; i < n.size(); ++i) ParseProbe(n[i], Index("probes", i));
}

void Parser::ParseProbe(const YAML::Node& item, const std::string& path) {
  auto fields =
      Map(item, path,
          {"name", "http", "tcp", "dns", "command", "grpc_health", "timeout", "interval", "from"});
  if (!fields) return;
  size_t before = errors_.size();
  Probe p;
  p.pos = Pos(item);
  if (auto* v = Need(*fields, item, path, "name")) {
    if (auto s = Name(*v, path + ".name")) {
      if (!probe_names_.insert(*s).second) {
        Error(*v, path + ".name", "duplicate probe name " + Quoted(*s));
      }
      p.name = *s;
    }
  }

  // The timeout may be written on the probe or inside its kind block (as in the flagship
  // example, `http: {url: ..., timeout: 1s}`), but not both.
  // Held by value: the kind block's field list it may come from goes out of scope. Set with
  // emplace only: assigning to a yaml-cpp Node rewrites the node it refers to.
  std::optional<YAML::Node> timeout_node;
  if (const YAML::Node* t = Find(*fields, "timeout")) timeout_node.emplace(*t);
  std::string timeout_path = path + ".timeout";
  auto kind_timeout = [&](const std::vector<MapField>& kf, const std::string& kpath) {
    if (const YAML::Node* t = Find(kf, "timeout")) {
      if (timeout_node) {
        Error(*t, kpath + ".timeout", "timeout given twice (also at " + timeout_path + ")");
      } else {
        timeout_node.emplace(*t);
        timeout_path = kpath + ".timeout";
      }
    }
  };

  const MapField* kind =
      OneKind(*fields, item, path, {"http", "tcp", "dns", "command", "grpc_health"}, "a probe",
              "a probe needs exactly one kind: http, tcp, dns or command");
  if (kind != nullptr) {
    const MapField& k = *kind;
    const std::string kpath = Sub(path, k.key);
    const YAML::Node& kn = k.value;
    if (k.key == "grpc_health") {
      Error(k.key_node, kpath, "grpc_health probes are not supported yet");
    } else if (k.key == "http") {
      p.kind = Probe::Kind::kHttp;
      if (auto kf =
              Map(kn, kpath, {"url", "expect_status", "body_regex", "max_latency", "timeout"})) {
        kind_timeout(*kf, kpath);
        if (auto* v = Need(*kf, kn, kpath, "url")) {
          if (auto s = String(*v, kpath + ".url")) {
            if (auto problem = UrlProblem(*s)) Error(*v, kpath + ".url", *problem);
            p.http.url = *s;
          }
        }
        if (auto* v = Find(*kf, "expect_status")) {
          if (auto s = Int(*v, kpath + ".expect_status", 100, 599)) {
            p.http.expect_status = static_cast<int>(*s);
          }
        }
        if (auto* v = Find(*kf, "body_regex")) p.http.body_regex = Regex(*v, kpath + ".body_regex");
        if (auto* v = Find(*kf, "max_latency")) {
          p.http.max_latency = Dur(*v, kpath + ".max_latency", true);
        }
      }
    } else if (k.key == "tcp") {
      p.kind = Probe::Kind::kTcp;
      if (auto kf = Map(kn, kpath, {"address", "timeout"})) {
        kind_timeout(*kf, kpath);
        if (auto* v = Need(*kf, kn, kpath, "address")) {
          if (auto s = String(*v, kpath + ".address")) {
            if (auto problem = SplitHostPort(*s, true, &p.tcp.host, &p.tcp.port)) {
              Error(*v, kpath + ".address", *problem);
            }
          }
        }
      }
    } else if (k.key == "dns") {
      p.kind = Probe::Kind::kDns;
      if (auto kf = Map(kn, kpath, {"name", "server", "expect", "timeout"})) {
        kind_timeout(*kf, kpath);
        if (auto* v = Need(*kf, kn, kpath, "name")) {
          if (auto s = String(*v, kpath + ".name")) {
            if (auto problem = DnsNameProblem(*s, false)) Error(*v, kpath + ".name", *problem);
            p.dns.name = *s;
          }
        }
        if (auto* v = Find(*kf, "server"); v && !v->IsNull()) {
          if (auto s = String(*v, kpath + ".server")) {
            std::string host;
            int port = 0;
            if (auto problem = SplitHostPort(*s, false, &host, &port)) {
              Error(*v, kpath + ".server", *problem);
            }
            p.dns.server = *s;
          }
        }
        if (auto* v = Find(*kf, "expect")) {
          if (auto s = String(*v, kpath + ".expect")) {
            static const std::set<std::string> kExpect = {"answer",   "noerror", "nxdomain",
                                                          "servfail", "refused", "nodata"};
            if (!kExpect.count(*s)) {
              Error(*v, kpath + ".expect",
                    "unknown expectation " + Quoted(*s) +
                        " (expected answer, noerror, nxdomain, servfail, refused or nodata)");
            }
            p.dns.expect = *s;
          }
        }
      }
    } else {  // command
      p.kind = Probe::Kind::kCommand;
      if (auto kf = Map(kn, kpath, {"argv", "expect_exit", "output_regex", "timeout"})) {
        kind_timeout(*kf, kpath);
        if (auto* v = Need(*kf, kn, kpath, "argv")) {
          const std::string apath = kpath + ".argv";
          if (v->IsScalar()) {
            Error(*v, apath, "argv must be a list; faultline never runs a shell");
          } else if (!v->IsSequence()) {
            Error(*v, apath, "expected a list of strings, got " + KindOf(*v));
          } else if (v->size() == 0 || v->size() > kMaxArgvEntries) {
            Error(*v, apath, "needs 1 to 256 entries, got " + std::to_string(v->size()));
          } else {
            for (size_t i = 0; i < v->size(); ++i) {
              const YAML::Node a = (*v)[i];
              auto s = String(a, Index(apath, i));
              if (!s) continue;
              if (s->size() > kMaxArgLength || s->find('\0') != std::string::npos ||
                  (i == 0 && s->empty())) {
                Error(a, Index(apath, i),
                      i == 0 ? "the program must be a non-empty string"
                             : "argument is too long or contains a NUL byte");
                continue;
              }
              p.command.argv.push_back(*s);
            }
          }
        }
        if (auto* v = Find(*kf, "expect_exit")) {
          if (auto s = Int(*v, kpath + ".expect_exit", 0, 255)) {
            p.command.expect_exit = static_cast<int>(*s);
          }
        }
        if (auto* v = Find(*kf, "output_regex")) {
          p.command.output_regex = Regex(*v, kpath + ".output_regex");
        }
      }
    }
  }

  bool timing_ok = true;
  if (timeout_node) {
    if (auto d = Dur(*timeout_node, timeout_path, true)) {
      p.timeout = *d;
    } else {
      timing_ok = false;
    }
  }
  const YAML::Node* interval_node = Find(*fields, "interval");
  if (interval_node) {
    if (auto d = Dur(*interval_node, path + ".interval", false)) {
      if (*d < kMinInterval) {
        Error(*interval_node, path + ".interval",
              "must be at least " + FormatDuration(kMinInterval) + ", got " + FormatDuration(*d));
        timing_ok = false;
      }
      p.interval = *d;
    } else {
      timing_ok = false;
    }
  }
  if (timing_ok && p.timeout > p.interval * kMaxIntervalTimeoutRatio) {
    const YAML::Node& at = timeout_node ? *timeout_node : interval_node ? *interval_node : item;
    Error(at, timeout_node ? timeout_path : path + ".interval",
          "timeout " + FormatDuration(p.timeout) + (timeout_node ? "" : " (the default)") +
              " is more than 10 times the interval " + FormatDuration(p.interval));
  }

  if (auto* v = Find(*fields, "from"); v && !v->IsNull()) {
    if (auto s = String(*v, path + ".from")) {
      if (*s == "controller") {
        p.from = *s;
      } else if (target_names_.count(*s)) {
        Error(*v, path + ".from", "agent-side probes are not supported yet; use from: controller");
      } else {
        Error(*v, path + ".from", "must be 'controller' or a target name, got " + Quoted(*s));
      }
    }
  }
  if (errors_.size() == before) exp_.probes.push_back(std::move(p));
}

void Parser::ParseSteadyState(const YAML::Node& n) {
  auto fields = Map(n, "steady_state", {"probes", "for", "timeout"});
  if (!fields) return;
  const YAML::Node* probes = Find(*fields, "probes");
  if (probes && !probes->IsNull()) {
    if (!probes->IsSequence()) {
      Error(*probes, "steady_state.probes",
            "expected a list of probe names, got " + KindOf(*probes));
    } else {
      for (size_t i = 0; i < probes->size(); ++i) {
        const YAML::Node pn = (*probes)[i];
        const std::string field = Index("steady_state.probes", i);
        auto s = String(pn, field);
        if (!s) continue;
        if (!probe_names_.count(*s)) {
          Error(pn, field, "unknown probe " + Quoted(*s) + " (not defined in probes)");
          continue;
        }
        exp_.steady_state.probes.push_back(*s);
      }
    }
  }
  if (!probes || probes->IsNull() || (probes->IsSequence() && probes->size() == 0)) {
    Warn(n, "steady_state.probes",
         "no steady-state probes: faults are injected without first checking that the system is "
         "healthy");
  }
  if (auto* v = Find(*fields, "for")) {
    if (auto d = Dur(*v, "steady_state.for", false)) exp_.steady_state.hold_for = *d;
  }
  if (auto* v = Find(*fields, "timeout")) {
    if (auto d = Dur(*v, "steady_state.timeout", true)) exp_.steady_state.timeout = *d;
  }
}

void Parser::ParseObjectives(const YAML::Node& n) {
  if (!List(n, "objectives", true)) return;
  std::set<std::string> names;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string path = Index("objectives", i);
    auto fields = Map(item, path, {"name", "probe", "after", "recover_within", "stable_for"});
    if (!fields) continue;
    size_t before = errors_.size();
    Objective o;
    o.pos = Pos(item);
    if (auto* v = Need(*fields, item, path, "name")) {
      if (auto s = Name(*v, path + ".name")) {
        if (!names.insert(*s).second)
          Error(*v, path + ".name", "duplicate objective name " + Quoted(*s));
        o.name = *s;
      }
    }
    if (auto* v = Need(*fields, item, path, "probe")) {
      if (auto s = String(*v, path + ".probe")) {
        if (!probe_names_.count(*s)) {
          Error(*v, path + ".probe", "unknown probe " + Quoted(*s) + " (not defined in probes)");
        }
        o.probe = *s;
      }
    }
    if (auto* v = Find(*fields, "after"); v && !v->IsNull()) {
      if (auto s = String(*v, path + ".after")) {
        if (*s == "inject") {
          o.after = Objective::Phase::kInject;
        } else if (*s == "revert") {
          o.after = Objective::Phase::kRevert;
        } else {
          Error(*v, path + ".after", "must be inject or revert, got " + Quoted(*s));
        }
      }
    }
    const YAML::Node* within = Need(*fields, item, path, "recover_within");
    if (within) {
      if (auto d = Dur(*within, path + ".recover_within", true)) o.recover_within = *d;
    }
    if (auto* v = Find(*fields, "stable_for")) {
      if (auto d = Dur(*v, path + ".stable_for", false)) o.stable_for = *d;
    }
    if (errors_.size() == before) exp_.objectives.push_back(std::move(o));
  }
}

void Parser::ParseAborts(const YAML::Node& n) {
  if (!List(n, "abort", false)) return;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string path = Index("abort", i);
    auto fields = Map(item, path, {"probe", "failing_for"});
    if (!fields) continue;
    size_t before = errors_.size();
    AbortCondition a;
    a.pos = Pos(item);
    if (auto* v = Need(*fields, item, path, "probe")) {
      if (auto s = String(*v, path + ".probe")) {
        if (!probe_names_.count(*s)) {
          Error(*v, path + ".probe", "unknown probe " + Quoted(*s) + " (not defined in probes)");
        }
        a.probe = *s;
      }
    }
    if (auto* v = Need(*fields, item, path, "failing_for")) {
      if (auto d = Dur(*v, path + ".failing_for", true)) a.failing_for = *d;
    }
    if (errors_.size() == before) exp_.aborts.push_back(std::move(a));
  }
}

// Warnings that need the whole experiment.
void Parser::CrossChecks(const YAML::Node& root) {
  if (!errors_.empty() || exp_.faults.empty()) return;
  Duration longest{};
  for (const Fault& f : exp_.faults) longest = std::max(longest, f.duration);
  // An objective longer than the fault window is legal and common (the flagship: "failover
  // within 15m" against a 20s fault): a recovery that does not happen inside the window is
  // reported as not recovered, with the window named in the verdict's note, so no warning here.
  if (exp_.max_duration && max_duration_node_) {
    Duration needed = exp_.steady_state.hold_for + longest;
    if (*exp_.max_duration < needed) {
      Warn(*max_duration_node_, "max_duration",
           FormatDuration(*exp_.max_duration) +
               " is shorter than steady state plus the longest "
               "fault (" +
               FormatDuration(needed) + "): every run will be aborted");
    }
  }
}

}  // namespace

ParseOutcome ParseExperimentText(std::string_view text, const std::string& filename) {
  return Parser(filename).Run(text);
}

ParseOutcome ParseExperimentFile(const std::string& path) {
  auto fail = [&](std::string message) {
    ParseOutcome out;
    out.errors.push_back({SourcePos{path, 0, 0}, "", std::move(message)});
    return out;
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot read experiment file " + path);
  std::string text;
  char buf[64 * 1024];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxExperimentFileBytes) {
      return fail("experiment file " + path + " is larger than 1 MiB");
    }
  }
  if (in.bad()) return fail("cannot read experiment file " + path);
  return ParseExperimentText(text, path);
}

}  // namespace faultline::experiment
