#include "agent/proxy/proxy_rules.h"

#include <http_parser.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "agent/host/nat_redirect.h"
#include "agent/netfilter/network_rules.h"
#include "common/dns_name.h"

namespace faultline::agent::proxy {
namespace {

using v1::DependencyFault;
using v1::NetworkSelector;
using Toxic = v1::DependencyFault::Toxic;

constexpr int kMaxAddresses = 256;
constexpr int kMaxHosts = 16;
constexpr int kMaxPorts = 64;
constexpr int kMaxToxics = 16;
constexpr uint32_t kMaxDelayUs = 60'000'000;
constexpr uint32_t kMaxDelayMs = 60'000;
constexpr uint32_t kMinResolveIntervalMs = 100;
constexpr uint32_t kMaxResolveIntervalMs = 3'600'000;
constexpr size_t kMaxAbortBody = 4096;
constexpr size_t kMaxPathPrefix = 1024;
constexpr size_t kMaxHeaderBlock = 64 * 1024;
constexpr int kMaxMethods = 16;
constexpr int kMaxAborts = 8;

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out;
}

bool HasPeers(const NetworkSelector& m) { return m.cidrs_size() > 0 || m.hosts_size() > 0; }

void SplitAddresses(const google::protobuf::RepeatedPtrField<std::string>& cidrs,
                    const std::vector<std::string>& resolved, std::set<std::string>* v4,
                    std::set<std::string>* v6) {
  auto add = [&](const std::string& text) {
    auto c = netfilter::ParseCidr(text);
    if (!c.ok()) return;  // validated earlier; resolved addresses come from getaddrinfo
    (c->v6 ? v6 : v4)->insert(c->text);
  };
  for (const auto& c : cidrs) add(c);
  for (const auto& r : resolved) add(r);
}

std::string Elements(const std::string& t, const std::string& set,
                     const std::set<std::string>& items) {
  if (items.empty()) return "";
  return "add element " + t + " " + set + " { " +
         Join(std::vector<std::string>(items.begin(), items.end())) + " }\n";
}

bool IsHttpToken(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

Status Field(const std::string& field, const std::string& message) {
  return InvalidArgument("dependency." + field + ": " + message);
}

Status ValidateToxic(const Toxic& t, const std::string& f) {
  if (!Toxic::Direction_IsValid(t.direction())) return Field(f + ".direction", "unknown");
  if (t.has_toxicity() && !(t.toxicity() > 0.0 && t.toxicity() <= 1.0)) {
    return Field(f + ".toxicity", "must be in (0, 1]");
  }
  switch (t.kind_case()) {
    case Toxic::kLatency:
      if (t.latency().latency_us() > kMaxDelayUs) return Field(f + ".latency", "at most 60 s");
      if (t.latency().jitter_us() > t.latency().latency_us()) {
        return Field(f + ".latency.jitter_us", "must not exceed the latency");
      }
      if (t.latency().latency_us() == 0) return Field(f + ".latency", "must be greater than 0");
      return Status::Ok();
    case Toxic::kBandwidth:
      if (t.bandwidth().rate_bytes_per_second() < 1) {
        return Field(f + ".bandwidth.rate_bytes_per_second", "must be at least 1");
      }
      return Status::Ok();
    case Toxic::kResetPeer:
      if (t.reset_peer().timeout_ms() > kMaxDelayMs)
        return Field(f + ".reset_peer", "at most 60 s");
      return Status::Ok();
    case Toxic::kTimeout:
      if (t.timeout().timeout_ms() > kMaxDelayMs) return Field(f + ".timeout", "at most 60 s");
      return Status::Ok();
    case Toxic::kSlowClose:
      if (t.slow_close().delay_ms() > kMaxDelayMs) return Field(f + ".slow_close", "at most 60 s");
      return Status::Ok();
    case Toxic::kLimitData:
      if (t.limit_data().bytes() < 1) return Field(f + ".limit_data.bytes", "must be at least 1");
      return Status::Ok();
    case Toxic::kSlicer:
      if (t.slicer().average_size() < 1 || t.slicer().average_size() > (1u << 20)) {
        return Field(f + ".slicer.average_size", "must be 1 to 1048576 bytes");
      }
      if (t.slicer().size_variation() >= t.slicer().average_size()) {
        return Field(f + ".slicer.size_variation", "must be smaller than average_size");
      }
      if (t.slicer().delay_us() > 1'000'000) return Field(f + ".slicer.delay_us", "at most 1 s");
      return Status::Ok();
    case Toxic::KIND_NOT_SET:
      break;
  }
  return Field(f,
               "a toxic needs one kind: latency, bandwidth, reset_peer, timeout, slow_close, "
               "limit_data or slicer");
}

const char* ReasonPhrase(uint32_t status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return status < 500 ? "Client Error" : "Server Error";
  }
}

// What http-parser learned from one header block.
struct HeaderInfo {
  std::string url;
  bool complete = false;
};

int OnUrl(http_parser* p, const char* at, size_t len) {
  auto* info = static_cast<HeaderInfo*>(p->data);
  if (info->url.size() + len > kMaxHeaderBlock) return 1;
  info->url.append(at, len);
  return 0;
}

int OnHeadersComplete(http_parser* p) {
  static_cast<HeaderInfo*>(p->data)->complete = true;
  return 0;
}

}  // namespace

Status ValidateDependencyFault(const DependencyFault& fault) {
  const NetworkSelector& m = fault.match();
  if (m.direction() != NetworkSelector::DIRECTION_UNSPECIFIED) {
    return Field("match.direction", "not used: the proxy takes outbound connections");
  }
  if (m.protocol() != NetworkSelector::PROTOCOL_ANY && m.protocol() != NetworkSelector::TCP) {
    return Field("match.protocol", "the proxy carries TCP only");
  }
  if (m.local_ports_size() > 0) return Field("match.local_ports", "not supported by the proxy");
  if (m.remote_ports_size() < 1 || m.remote_ports_size() > kMaxPorts) {
    return Field("match.remote_ports", "name the dependency's port(s): 1 to 64 ports");
  }
  for (int i = 0; i < m.remote_ports_size(); ++i) {
    if (m.remote_ports(i) < 1 || m.remote_ports(i) > 65535) {
      return Field("match.remote_ports[" + std::to_string(i) + "]", "must be 1-65535");
    }
  }
  if (m.cidrs_size() > kMaxAddresses || m.exclude_cidrs_size() > kMaxAddresses) {
    return Field("match.cidrs", "at most 256 entries");
  }
  for (int i = 0; i < m.cidrs_size(); ++i) {
    if (auto c = netfilter::ParseCidr(m.cidrs(i)); !c.ok()) {
      return Field("match.cidrs[" + std::to_string(i) + "]", c.status().message());
    }
  }
  for (int i = 0; i < m.exclude_cidrs_size(); ++i) {
    if (auto c = netfilter::ParseCidr(m.exclude_cidrs(i)); !c.ok()) {
      return Field("match.exclude_cidrs[" + std::to_string(i) + "]", c.status().message());
    }
  }
  if (m.hosts_size() > kMaxHosts) return Field("match.hosts", "at most 16 host names");
  for (int i = 0; i < m.hosts_size(); ++i) {
    if (Status s = ValidateDnsName(m.hosts(i), false); !s.ok()) {
      return Field("match.hosts[" + std::to_string(i) + "]", s.message());
    }
  }
  if (m.resolve_interval_ms() != 0 && (m.resolve_interval_ms() < kMinResolveIntervalMs ||
                                       m.resolve_interval_ms() > kMaxResolveIntervalMs)) {
    return Field("match.resolve_interval_ms", "must be 100 ms to 1 h");
  }
  if (fault.toxics_size() > kMaxToxics) return Field("toxics", "at most 16 toxics");
  for (int i = 0; i < fault.toxics_size(); ++i) {
    if (Status s = ValidateToxic(fault.toxics(i), "toxics[" + std::to_string(i) + "]"); !s.ok()) {
      return s;
    }
  }
  if (fault.has_http()) {
    const auto& h = fault.http();
    if (h.delay_percent() < 0.0 || h.delay_percent() > 100.0) {
      return Field("http.delay_percent", "must be 0 to 100");
    }
    if (h.aborts_size() > kMaxAborts) return Field("http.aborts", "at most 8 aborts");
    double total = 0.0;
    for (int i = 0; i < h.aborts_size(); ++i) {
      const auto& a = h.aborts(i);
      const std::string f = "http.aborts[" + std::to_string(i) + "]";
      if (a.status() < 400 || a.status() > 599) return Field(f + ".status", "must be 400-599");
      if (!(a.percent() > 0.0 && a.percent() <= 100.0)) {
        return Field(f + ".percent", "must be in (0, 100]");
      }
      if (a.body().size() > kMaxAbortBody) return Field(f + ".body", "at most 4096 bytes");
      total += a.percent();
    }
    if (total > 100.0 + 1e-9) return Field("http.aborts", "the percents add up to more than 100");
    if (h.delay_ms() > kMaxDelayMs) return Field("http.delay_ms", "at most 60 s");
    if ((h.delay_ms() > 0) != (h.delay_percent() > 0.0)) {
      return Field("http.delay_ms", "a delay needs both delay_ms and delay_percent");
    }
    if (h.aborts_size() == 0 && h.delay_percent() == 0.0) {
      return Field("http", "needs an abort (status, percent) or a delay (delay_ms, percent)");
    }
    if (h.methods_size() > kMaxMethods) return Field("http.methods", "at most 16 methods");
    for (int i = 0; i < h.methods_size(); ++i) {
      if (!IsHttpToken(h.methods(i))) {
        return Field("http.methods[" + std::to_string(i) + "]",
                     "must be an upper-case HTTP method such as GET");
      }
    }
    if (h.path_prefix().size() > kMaxPathPrefix ||
        (!h.path_prefix().empty() && h.path_prefix()[0] != '/') ||
        std::any_of(h.path_prefix().begin(), h.path_prefix().end(),
                    [](char c) { return c <= ' ' || c == 0x7f; })) {
      return Field("http.path_prefix",
                   "must start with '/' and hold no spaces or control "
                   "characters (at most 1024 bytes)");
    }
  }
  return Status::Ok();
}

std::string RedirectApplyBatch(const std::string& table, const DependencyFault& fault,
                               const RedirectOptions& o, const std::vector<std::string>& resolved) {
  const std::string t = "inet " + table;
  const NetworkSelector& m = fault.match();
  std::string b = "add table " + t + "\ndelete table " + t + "\nadd table " + t + "\n";
  std::set<std::string> v4, v6, x4, x6;
  SplitAddresses(m.cidrs(), resolved, &v4, &v6);
  SplitAddresses(m.exclude_cidrs(), {}, &x4, &x6);
  if (HasPeers(m)) {
    b += "add set " + t + " peers4 { type ipv4_addr; flags interval; }\n";
    b += "add set " + t + " peers6 { type ipv6_addr; flags interval; }\n";
    b += Elements(t, "peers4", v4) + Elements(t, "peers6", v6);
  }
  b += "add set " + t + " excl4 { type ipv4_addr; flags interval; }\n";
  b += "add set " + t + " excl6 { type ipv6_addr; flags interval; }\n";
  b += Elements(t, "excl4", x4) + Elements(t, "excl6", x6);
  b += "add counter " + t + " redirected\n";
  host::NatRedirect redirect;
  redirect.table = t;
  redirect.exempt = {host::SocketMarkMatch(o.socket_mark), "ip daddr @excl4", "ip6 daddr @excl6"};
  std::set<uint32_t> unique(m.remote_ports().begin(), m.remote_ports().end());
  std::vector<std::string> ports;
  for (uint32_t p : unique) ports.push_back(std::to_string(p));
  const std::string match = "tcp dport { " + Join(ports) + " } ";
  const std::string count = "counter name \"redirected\"";
  redirect.redirects.push_back(
      {"meta nfproto ipv4 " + match + (HasPeers(m) ? "ip daddr @peers4 " : "") + count, o.port});
  if (o.ipv6) {
    redirect.redirects.push_back(
        {"meta nfproto ipv6 " + match + (HasPeers(m) ? "ip6 daddr @peers6 " : "") + count, o.port});
  }
  return b + host::NatRedirectBatch(redirect);
}

std::string RedirectPeerUpdateBatch(const std::string& table, const DependencyFault& fault,
                                    const std::vector<std::string>& resolved) {
  if (!HasPeers(fault.match())) return "";
  const std::string t = "inet " + table;
  std::set<std::string> v4, v6;
  SplitAddresses(fault.match().cidrs(), resolved, &v4, &v6);
  return "flush set " + t + " peers4\nflush set " + t + " peers6\n" + Elements(t, "peers4", v4) +
         Elements(t, "peers6", v6);
}

ToxicPlan PlanToxics(const DependencyFault& fault, const std::function<double()>& uniform) {
  ToxicPlan plan;
  for (const Toxic& t : fault.toxics()) {
    const double p = t.has_toxicity() ? t.toxicity() : 1.0;
    if (p < 1.0 && uniform() >= p) continue;
    (t.direction() == Toxic::DOWNSTREAM ? plan.downstream : plan.upstream).push_back(t);
  }
  return plan;
}

std::string ToxicKindName(const Toxic& toxic) {
  const auto* field = Toxic::descriptor()->FindFieldByNumber(toxic.kind_case());
  return field ? field->name() : "none";
}

std::string AbortResponse(uint32_t status, const std::string& body) {
  const bool json = !body.empty() && (body.front() == '{' || body.front() == '[');
  return "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) +
         "\r\nContent-Type: " + (json ? "application/json" : "text/plain") +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

HttpRequestGate::HttpRequestGate(DependencyFault::Http http, std::function<double()> uniform)
    : http_(std::move(http)), uniform_(std::move(uniform)) {}

HttpRequestGate::Output HttpRequestGate::Feed(std::string_view data) {
  Output out;
  std::string leftover;
  while (!data.empty()) {
    if (state_ == State::kPassThrough) {
      out.forward.push_back({std::string(data), std::chrono::microseconds(0)});
      return out;
    }
    if (state_ == State::kBody) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(body_left_, data.size()));
      out.forward.push_back({std::string(data.substr(0, n)), body_delay_});
      body_left_ -= n;
      data.remove_prefix(n);
      if (body_left_ == 0) state_ = State::kHeaders;
      continue;
    }
    // kHeaders: collect up to the blank line that ends the header block.
    const size_t before = pending_.size();
    pending_.append(data);
    const size_t search_from = before >= 3 ? before - 3 : 0;
    const size_t end = pending_.find("\r\n\r\n", search_from);
    if (end == std::string::npos) {
      if (pending_.size() > kMaxHeaderBlock) {
        ++counters_.uninspected;
        state_ = State::kPassThrough;
        out.forward.push_back({std::move(pending_), std::chrono::microseconds(0)});
        pending_.clear();
      }
      return out;
    }
    const size_t header_end = end + 4;
    // Bytes after the header block (body, next request) go round the loop again; `data` is
    // re-pointed only after append() above copied what it viewed.
    std::string next = pending_.substr(header_end);
    pending_.resize(header_end);
    Decide(&out, header_end);
    if (out.abort) return out;
    leftover = std::move(next);
    data = leftover;
  }
  return out;
}

void HttpRequestGate::Decide(Output* out, size_t header_end) {
  HeaderInfo info;
  http_parser parser;
  http_parser_init(&parser, HTTP_REQUEST);
  parser.data = &info;
  http_parser_settings settings;
  http_parser_settings_init(&settings);
  settings.on_url = OnUrl;
  settings.on_headers_complete = OnHeadersComplete;
  const size_t parsed = http_parser_execute(&parser, &settings, pending_.data(), header_end);
  std::string block = std::move(pending_);
  pending_.clear();
  const bool chunked = (parser.flags & F_CHUNKED) != 0;
  if (!info.complete || parsed != header_end || HTTP_PARSER_ERRNO(&parser) != HPE_OK ||
      parser.upgrade || parser.method == HTTP_CONNECT || chunked) {
    // Framing we do not follow: stop inspecting; this request and the rest pass unchanged.
    if (info.complete) ++counters_.requests_seen;
    ++counters_.uninspected;
    state_ = State::kPassThrough;
    out->forward.push_back({std::move(block), std::chrono::microseconds(0)});
    return;
  }
  ++counters_.requests_seen;
  const std::string method = http_method_str(static_cast<http_method>(parser.method));
  bool matched =
      http_.methods().empty() ||
      std::find(http_.methods().begin(), http_.methods().end(), method) != http_.methods().end();
  matched = matched && info.url.compare(0, http_.path_prefix().size(), http_.path_prefix()) == 0;
  // Absent Content-Length: http-parser reports ULLONG_MAX; a request then has no body.
  const uint64_t body = parser.content_length == ULLONG_MAX ? 0 : parser.content_length;
  std::chrono::microseconds delay{0};
  if (matched) {
    ++counters_.requests_matched;
    if (http_.aborts_size() > 0) {
      const double draw = uniform_() * 100.0;
      double cumulative = 0.0;
      for (const auto& a : http_.aborts()) {
        cumulative += a.percent();
        if (draw < cumulative) {
          ++counters_.requests_aborted;
          out->abort = true;
          out->response = AbortResponse(a.status(), a.body());
          state_ = State::kPassThrough;  // the connection is closed after the response
          return;
        }
      }
    }
    if (http_.delay_percent() > 0.0 && uniform_() * 100.0 < http_.delay_percent()) {
      ++counters_.requests_delayed;
      delay = std::chrono::milliseconds(http_.delay_ms());
    }
  }
  out->forward.push_back({std::move(block), delay});
  if (body > 0) {
    state_ = State::kBody;
    body_left_ = body;
    body_delay_ = delay;
  }
}

}  // namespace faultline::agent::proxy
