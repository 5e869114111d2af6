#include "agent/proxy/proxy_rules.h"

#include <http_parser.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "agent/host/nat_redirect.h"
#include "agent/netfilter/network_rules.h"

namespace faultline::agent::proxy {
namespace {

using v1::DependencyFault;
using v1::NetworkSelector;
using Toxic = v1::DependencyFault::Toxic;

constexpr size_t kMaxHeaderBlock = 64 * 1024;

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
