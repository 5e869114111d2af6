// The experiment parser's probe side: probes, steady state, objectives, abort conditions, and
// the checks that need the whole experiment.
#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/dns_name.h"
#include "controller/experiment/parser_sections.h"

namespace faultline::experiment {
namespace {

using namespace std::chrono_literals;

constexpr Duration kMinInterval = 10ms;
constexpr int kMaxIntervalTimeoutRatio = 10;
constexpr size_t kMaxUrlLength = 2048;
constexpr size_t kMaxArgvEntries = 256;
constexpr size_t kMaxArgLength = 4096;
// Bounds of the remote-check probes (grpc_health, prometheus) and the alert abort condition.
constexpr size_t kMaxQueryLength = 4096;
constexpr size_t kMaxNameLength = 256;  // a gRPC service name, an alert name, a TLS name
constexpr size_t kMaxPathLength = 4096;
constexpr Duration kMaxRemoteTimeout = 60s;
constexpr Duration kMinAlertInterval = 100ms;
constexpr Duration kMaxAlertInterval = 60s;

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

// Why `text` is not a usable short name (service, alert, TLS name): empty optional when it is.
std::optional<std::string> ShortTextProblem(std::string_view text, bool allow_empty) {
  if (text.empty() && !allow_empty) return "must not be empty";
  if (text.size() > kMaxNameLength) return "longer than 256 characters";
  for (char c : text) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return "contains a control character";
  }
  return std::nullopt;
}

}  // namespace

// A Prometheus base URL: http(s)://host[:port][/prefix], no query or fragment (the API path is
// appended to it).
std::optional<std::string> Parser::PrometheusUrl(const YAML::Node& n, const std::string& field) {
  auto s = String(n, field);
  if (!s) return std::nullopt;
  if (auto problem = UrlProblem(*s)) {
    Error(n, field, *problem);
    return std::nullopt;
  }
  if (s->find_first_of("?#") != std::string::npos) {
    Error(n, field, "the Prometheus base URL takes no query or fragment, got " + Quoted(*s));
    return std::nullopt;
  }
  std::string url = *s;
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

void Parser::ParseGrpcHealth(const YAML::Node& kn, const std::string& kpath,
                             const std::vector<MapField>& kf, Probe* p) {
  GrpcHealthProbe& g = p->grpc_health;
  if (auto* v = Need(kf, kn, kpath, "address")) {
    if (auto s = String(*v, kpath + ".address")) {
      std::string host;
      int port = 0;
      if (auto problem = SplitHostPort(*s, true, &host, &port)) {
        Error(*v, kpath + ".address", *problem);
      }
      g.address = *s;
    }
  }
  if (auto* v = Find(kf, "service"); v && !v->IsNull()) {
    if (auto s = String(*v, kpath + ".service")) {
      if (auto problem = ShortTextProblem(*s, true)) Error(*v, kpath + ".service", *problem);
      g.service = *s;
    }
  }
  const YAML::Node* tls = Find(kf, "tls");
  if (tls == nullptr || tls->IsNull()) return;
  const std::string tpath = kpath + ".tls";
  auto tf = Map(*tls, tpath, {"ca", "cert", "key", "server_name"});
  if (!tf) return;
  g.tls = true;
  auto file = [&](const char* key, std::string* out) {
    if (auto* v = Find(*tf, key); v && !v->IsNull()) {
      const std::string field = tpath + "." + key;
      if (auto s = String(*v, field)) {
        if (s->empty() || s->size() > kMaxPathLength || s->find('\0') != std::string::npos) {
          Error(*v, field, "expected a file path (1 to 4096 characters, no NUL byte)");
        }
        *out = *s;
      }
    }
  };
  file("ca", &g.ca_file);
  file("cert", &g.cert_file);
  file("key", &g.key_file);
  if (g.cert_file.empty() != g.key_file.empty()) {
    Error(*tls, tpath,
          "cert and key go together (a client certificate needs its key), got only " +
              std::string(g.cert_file.empty() ? "key" : "cert"));
  }
  if (auto* v = Find(*tf, "server_name"); v && !v->IsNull()) {
    if (auto s = String(*v, tpath + ".server_name")) {
      if (auto problem = DnsNameProblem(*s, false)) Error(*v, tpath + ".server_name", *problem);
      g.server_name = *s;
    }
  }
}

void Parser::ParsePrometheusProbe(const YAML::Node& kn, const std::string& kpath,
                                  const std::vector<MapField>& kf, Probe* p) {
  PrometheusProbe& q = p->prometheus;
  if (auto* v = Need(kf, kn, kpath, "url")) {
    if (auto s = PrometheusUrl(*v, kpath + ".url")) q.url = *s;
  }
  if (auto* v = Need(kf, kn, kpath, "query")) {
    if (auto s = String(*v, kpath + ".query")) {
      if (s->find_first_not_of(" \t\r\n") == std::string::npos) {
        Error(*v, kpath + ".query", "the PromQL query is empty");
      } else if (s->size() > kMaxQueryLength) {
        Error(
            *v, kpath + ".query",
            "the PromQL query is longer than 4096 characters (" + std::to_string(s->size()) + ")");
      } else if (s->find('\0') != std::string::npos) {
        Error(*v, kpath + ".query", "the PromQL query contains a NUL byte");
      }
      q.query = *s;
    }
  }
  if (auto* v = Need(kf, kn, kpath, "op")) {
    if (auto s = String(*v, kpath + ".op")) {
      if (auto op = ParseCompareOp(*s)) {
        q.op = *op;
      } else {
        Error(*v, kpath + ".op",
              "unknown comparison " + Quoted(*s) + " (expected <, <=, >, >=, == or !=)");
      }
    }
  }
  if (auto* v = Need(kf, kn, kpath, "value")) {
    if (auto s = String(*v, kpath + ".value")) {
      char* end = nullptr;
      double d = s->empty() ? 0 : std::strtod(s->c_str(), &end);
      if (s->empty() || end == nullptr || *end != '\0' || !std::isfinite(d)) {
        Error(*v, kpath + ".value", "expected a finite number, got " + Quoted(*s));
      }
      q.value = d;
    }
  }
}

void Parser::ParseProbes(const YAML::Node& n) {
  if (!List(n, "probes", true)) return;
  for (size_t i = 0; i < n.size(); ++i) ParseProbe(n[i], Index("probes", i));
}

void Parser::ParseProbe(const YAML::Node& item, const std::string& path) {
  auto fields = Map(item, path,
                    {"name", "http", "tcp", "dns", "command", "grpc_health", "prometheus",
                     "timeout", "interval", "from"});
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
      OneKind(*fields, item, path, {"http", "tcp", "dns", "command", "grpc_health", "prometheus"},
              "a probe",
              "a probe needs exactly one kind: http, tcp, dns, command, grpc_health or prometheus");
  if (kind != nullptr) {
    const MapField& k = *kind;
    const std::string kpath = Sub(path, k.key);
    const YAML::Node& kn = k.value;
    if (k.key == "grpc_health") {
      p.kind = Probe::Kind::kGrpcHealth;
      if (auto kf = Map(kn, kpath, {"address", "service", "tls", "timeout"})) {
        kind_timeout(*kf, kpath);
        ParseGrpcHealth(kn, kpath, *kf, &p);
      }
    } else if (k.key == "prometheus") {
      p.kind = Probe::Kind::kPrometheus;
      if (auto kf = Map(kn, kpath, {"url", "query", "op", "value", "timeout"})) {
        kind_timeout(*kf, kpath);
        ParsePrometheusProbe(kn, kpath, *kf, &p);
      }
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
      if ((p.kind == Probe::Kind::kGrpcHealth || p.kind == Probe::Kind::kPrometheus) &&
          *d > kMaxRemoteTimeout) {
        Error(
            *timeout_node, timeout_path,
            "must be at most " + FormatDuration(kMaxRemoteTimeout) + ", got " + FormatDuration(*d));
        timing_ok = false;
      }
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
        // A target of hosts runs the probe on each agent; a target with `workloads:` runs it
        // inside each picked workload's network namespace (the agent resolves it). The same
        // rules hold for both: the agent checks them again (common/probes/probe_request.h).
        const Target* target = exp_.FindTarget(*s);
        const std::string on = target != nullptr && target->workloads ? " (inside a workload)" : "";
        if (p.kind == Probe::Kind::kPrometheus) {
          Error(*v, path + ".from",
                "prometheus probes run from the controller only, not from "
                "an agent" +
                    on);
        } else if (p.kind == Probe::Kind::kGrpcHealth &&
                   (!p.grpc_health.ca_file.empty() || !p.grpc_health.cert_file.empty())) {
          Error(*v, path + ".from",
                "a grpc_health probe run from an agent cannot name TLS files (the agent reads no "
                "file a caller names; it verifies with the system's roots)");
        } else if (p.interval < std::chrono::milliseconds(50)) {
          Error(*v, path + ".from",
                "a probe from an agent" + on + " needs an interval of at least 50ms, got " +
                    FormatDuration(p.interval));
        } else if (p.kind == Probe::Kind::kCommand &&
                   (p.command.argv.empty() || p.command.argv[0].empty() ||
                    p.command.argv[0][0] != '/' || p.command.argv.size() > 64)) {
          Error(*v, path + ".from",
                "a command probe from an agent names its program by absolute path (the agent "
                "runs only the paths its --allow-probe-command lists) with at most 64 arguments");
        } else {
          p.from = *s;
        }
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
    auto fields = Map(item, path,
                      {"name", "probe", "after", "recover_within", "stable_for", "detect_within",
                       "availability", "latency"});
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
    const MapField* kind =
        OneKind(*fields, item, path, {"recover_within", "detect_within", "availability", "latency"},
                "an objective",
                "an objective needs exactly one of recover_within, detect_within, availability or "
                "latency");
    if (kind != nullptr) {
      const std::string kpath = path + "." + kind->key;
      if (kind->key == "recover_within") {
        o.kind = Objective::Kind::kRecover;
        if (auto d = Dur(kind->value, kpath, true)) o.recover_within = *d;
      } else if (kind->key == "detect_within") {
        o.kind = Objective::Kind::kDetect;
        if (auto d = Dur(kind->value, kpath, true)) o.detect_within = *d;
      } else if (kind->key == "availability") {
        o.kind = Objective::Kind::kAvailability;
        if (auto share = Share(kind->value, kpath)) {
          if (!(*share > 0 && *share <= 1)) {
            Error(kind->value, kpath,
                  "must be above 0% and at most 100% (the share of samples that must be good), "
                  "got " +
                      Quoted(kind->value.Scalar()));
          }
          o.availability_min = *share;
        }
      } else {
        o.kind = Objective::Kind::kLatency;
        ParseLatencyObjective(kind->value, kpath, &o.latency);
      }
      // Keys that only a recovery objective has.
      if (o.kind != Objective::Kind::kRecover) {
        if (const YAML::Node* v = Find(*fields, "stable_for")) {
          Error(*v, path + ".stable_for", "stable_for belongs to a recover_within objective");
        }
        if (o.after == Objective::Phase::kRevert) {
          Error(*Find(*fields, "after"), path + ".after",
                std::string("a ") + kind->key +
                    " objective is judged over the fault window; only recover_within can be "
                    "measured after revert");
        }
      }
    }
    if (auto* v = Find(*fields, "stable_for"); v && o.kind == Objective::Kind::kRecover) {
      if (auto d = Dur(*v, path + ".stable_for", false)) o.stable_for = *d;
    }
    if (errors_.size() == before) exp_.objectives.push_back(std::move(o));
  }
}

void Parser::ParseLatencyObjective(const YAML::Node& n, const std::string& path,
                                   LatencyObjective* l) {
  auto fields = Map(n, path, {"percentile", "below", "min_samples"});
  if (!fields) return;
  if (auto* v = Need(*fields, n, path, "percentile")) {
    if (auto s = String(*v, path + ".percentile")) {
      char* end = nullptr;
      double p = std::strtod(s->c_str(), &end);
      if (s->empty() || end == nullptr || *end != '\0' || !(p > 0 && p < 100)) {
        Error(*v, path + ".percentile",
              "must be a number above 0 and below 100 (99 for p99, 99.9 for p99.9), got " +
                  Quoted(*s));
      } else {
        l->percentile = p;
      }
    }
  }
  if (auto* v = Need(*fields, n, path, "below")) {
    if (auto d = Dur(*v, path + ".below", true)) l->below = *d;
  }
  l->min_samples = MinLatencySamples(l->percentile);
  if (auto* v = Find(*fields, "min_samples")) {
    if (auto k = Int(*v, path + ".min_samples", 1, 1000000)) l->min_samples = static_cast<int>(*k);
  }
}

void Parser::ParseAborts(const YAML::Node& n) {
  if (!List(n, "abort", false)) return;
  for (size_t i = 0; i < n.size(); ++i) {
    const YAML::Node item = n[i];
    const std::string path = Index("abort", i);
    auto fields = Map(item, path, {"probe", "failing_for", "prometheus_alert", "url", "interval"});
    if (!fields) continue;
    size_t before = errors_.size();
    AbortCondition a;
    a.pos = Pos(item);
    const MapField* kind =
        OneKind(*fields, item, path, {"probe", "prometheus_alert"}, "an abort condition",
                "an abort condition needs exactly one of probe (with failing_for) or "
                "prometheus_alert (with url)");
    if (kind == nullptr) continue;
    // The keys that belong to the other kind of condition.
    const bool is_probe = kind->key == "probe";
    for (const char* other : is_probe ? std::vector<const char*>{"url", "interval"}
                                      : std::vector<const char*>{"failing_for"}) {
      if (const YAML::Node* v = Find(*fields, other)) {
        Error(*v, path + "." + other,
              std::string(other) + " belongs to " +
                  (is_probe ? "a prometheus_alert condition" : "a probe condition"));
      }
    }
    if (is_probe) {
      if (auto s = String(kind->value, path + ".probe")) {
        if (!probe_names_.count(*s)) {
          Error(kind->value, path + ".probe",
                "unknown probe " + Quoted(*s) + " (not defined in probes)");
        }
        a.probe = *s;
      }
      if (auto* v = Need(*fields, item, path, "failing_for")) {
        if (auto d = Dur(*v, path + ".failing_for", true)) a.failing_for = *d;
      }
    } else {
      if (auto s = String(kind->value, path + ".prometheus_alert")) {
        if (auto problem = ShortTextProblem(*s, false)) {
          Error(kind->value, path + ".prometheus_alert", *problem);
        }
        a.prometheus_alert = *s;
      }
      if (auto* v = Need(*fields, item, path, "url")) {
        if (auto s = PrometheusUrl(*v, path + ".url")) a.prometheus_url = *s;
      }
      if (auto* v = Find(*fields, "interval")) {
        if (auto d = Dur(*v, path + ".interval", true)) {
          if (*d < kMinAlertInterval || *d > kMaxAlertInterval) {
            Error(*v, path + ".interval",
                  "must be between " + FormatDuration(kMinAlertInterval) + " and " +
                      FormatDuration(kMaxAlertInterval) + ", got " + FormatDuration(*d));
          }
          a.alert_interval = *d;
        }
      }
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

}  // namespace faultline::experiment
