#include "common/probes/probe_runner.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <ldns/ldns.h>
#include <netdb.h>
#include <poll.h>
#include <re2/re2.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "common/clock.h"
#include "common/probes/grpc_health_probe.h"
#include "common/process.h"

namespace faultline::probes {

namespace {

using Probe = ProbeSpec;

size_t AppendBody(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  // Bodies are only checked against a regex; cap what we keep so a huge page cannot hurt us.
  if (body->size() < (1 << 20)) body->append(data, size * n);
  return size * n;
}

// True when `pattern` matches somewhere in `text`. RE2 runs in time linear in the text and
// without recursion, so a large body (std::regex overflowed the stack on 30 KB) is safe. A pattern
// RE2 rejects (the parser already refused it) never matches.
bool Matches(const std::string& text, const std::string& pattern) {
  RE2 re(pattern, RE2::Quiet);
  return re.ok() && RE2::PartialMatch(text, re);
}

ProbeOutcome RunHttp(const Probe& p) {
  ProbeOutcome out;
  std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    out.detail = "curl_easy_init failed";
    return out;
  }
  std::string body;
  auto timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(p.timeout).count();
  curl_easy_setopt(curl.get(), CURLOPT_URL, p.http.url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "faultline-probe/1");
  CURLcode rc = curl_easy_perform(curl.get());
  double total = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_TOTAL_TIME, &total);
  out.latency = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(total));
  if (rc != CURLE_OK) {
    out.detail = curl_easy_strerror(rc);
    return out;
  }
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  out.detail = std::to_string(status);
  if (status != p.http.expect_status) return out;
  if (p.http.body_regex && !Matches(body, *p.http.body_regex)) {
    out.detail += " body does not match";
    return out;
  }
  if (p.http.max_latency && out.latency > *p.http.max_latency) {
    out.detail += " slower than " + FormatDuration(*p.http.max_latency);
    return out;
  }
  out.ok = true;
  return out;
}

ProbeOutcome RunTcp(const Probe& p) {
  ProbeOutcome out;
  auto started = SystemClock::Instance().Now();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(p.tcp.port);
  if (int rc = getaddrinfo(p.tcp.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    out.detail = std::string("resolve: ") + gai_strerror(rc);
    out.latency = SystemClock::Instance().Now() - started;
    return out;
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    out.detail = std::string("socket: ") + strerror(errno);
    return out;
  }
  int err = 0;
  if (connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    err = errno;
    if (err == EINPROGRESS) {
      pollfd pfd{fd, POLLOUT, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          p.timeout - (SystemClock::Instance().Now() - started));
      int n = poll(&pfd, 1, static_cast<int>(std::max<int64_t>(0, left.count())));
      if (n == 0) {
        err = ETIMEDOUT;
      } else {
        socklen_t len = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      }
    }
  }
  close(fd);
  out.latency = SystemClock::Instance().Now() - started;
  if (err != 0) {
    out.detail = std::string("connect: ") + (err == ETIMEDOUT ? "timed out" : strerror(err));
    return out;
  }
  out.ok = true;
  out.detail = "connected";
  return out;
}

ProbeOutcome RunDns(const Probe& p) {
  ProbeOutcome out;
  ldns_resolver* res = nullptr;
  if (p.dns.server.empty()) {
    const char* file = p.dns.resolv_conf.empty() ? nullptr : p.dns.resolv_conf.c_str();
    if (ldns_resolver_new_frm_file(&res, file) != LDNS_STATUS_OK) {
      out.detail = std::string("cannot read ") + (file ? file : "/etc/resolv.conf");
      return out;
    }
  } else {
    res = ldns_resolver_new();
    std::string host = p.dns.server;
    uint16_t port = 53;
    if (auto colon = host.rfind(':'); colon != std::string::npos && host.find(':') == colon) {
      port = static_cast<uint16_t>(std::stoi(host.substr(colon + 1)));
      host = host.substr(0, colon);
    }
    ldns_rdf* ns = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_A, host.c_str());
    if (!ns) ns = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_AAAA, host.c_str());
    if (!ns) {
      ldns_resolver_deep_free(res);
      out.detail = "server must be an IP address";
      return out;
    }
    ldns_resolver_push_nameserver(res, ns);
    ldns_rdf_deep_free(ns);
    ldns_resolver_set_port(res, port);
  }
  std::unique_ptr<ldns_resolver, decltype(&ldns_resolver_deep_free)> guard(res,
                                                                           ldns_resolver_deep_free);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(p.timeout).count();
  ldns_resolver_set_timeout(
      res, timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)});
  ldns_resolver_set_retry(res, 1);
  ldns_resolver_set_retrans(res, 1);
  ldns_rdf* name = ldns_dname_new_frm_str(p.dns.name.c_str());
  if (!name) {
    out.detail = "invalid name";
    return out;
  }
  auto started = SystemClock::Instance().Now();
  ldns_pkt* pkt = nullptr;
  ldns_status st = ldns_resolver_send(&pkt, res, name, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD);
  out.latency = SystemClock::Instance().Now() - started;
  ldns_rdf_deep_free(name);
  if (st != LDNS_STATUS_OK || !pkt) {
    out.detail = std::string("no answer: ") + ldns_get_errorstr_by_id(st);
    if (pkt) ldns_pkt_free(pkt);
    return out;
  }
  ldns_pkt_rcode rcode = ldns_pkt_get_rcode(pkt);
  size_t answers = ldns_pkt_ancount(pkt);
  ldns_pkt_free(pkt);
  std::string got;
  switch (rcode) {
    case LDNS_RCODE_NOERROR:
      got = answers > 0 ? "answer" : "nodata";
      break;
    case LDNS_RCODE_NXDOMAIN:
      got = "nxdomain";
      break;
    case LDNS_RCODE_SERVFAIL:
      got = "servfail";
      break;
    case LDNS_RCODE_REFUSED:
      got = "refused";
      break;
    default:
      got = "rcode " + std::to_string(static_cast<int>(rcode));
      break;
  }
  out.detail = got;
  const std::string& want = p.dns.expect;
  out.ok = got == want || (want == "noerror" && (got == "answer" || got == "nodata"));
  return out;
}

ProbeOutcome RunCommand(const Probe& p) {
  ProbeOutcome out;
  auto started = SystemClock::Instance().Now();
  auto r =
      RunProcess(p.command.argv, std::chrono::duration_cast<std::chrono::milliseconds>(p.timeout));
  out.latency = SystemClock::Instance().Now() - started;
  if (!r.ok()) {
    out.detail = r.status().message();
    return out;
  }
  if (r->timed_out) {
    out.detail = "timed out";
    return out;
  }
  out.detail = "exit " + std::to_string(r->exit_code);
  if (r->exit_code != p.command.expect_exit) return out;
  if (p.command.output_regex && !Matches(r->out, *p.command.output_regex)) {
    out.detail += ", output does not match";
    return out;
  }
  out.ok = true;
  return out;
}

}  // namespace

void InitProbes() { curl_global_init(CURL_GLOBAL_DEFAULT); }

const char* ProbeKindName(ProbeSpec::Kind kind) {
  switch (kind) {
    case ProbeSpec::Kind::kHttp:
      return "http";
    case ProbeSpec::Kind::kTcp:
      return "tcp";
    case ProbeSpec::Kind::kDns:
      return "dns";
    case ProbeSpec::Kind::kCommand:
      return "command";
    case ProbeSpec::Kind::kGrpcHealth:
      return "grpc_health";
    case ProbeSpec::Kind::kPrometheus:
      return "prometheus";
  }
  return "unknown";
}

ProbeOutcome RunHostProbeOnce(const ProbeSpec& probe) {
  try {
    switch (probe.kind) {
      case Probe::Kind::kHttp:
        return RunHttp(probe);
      case Probe::Kind::kTcp:
        return RunTcp(probe);
      case Probe::Kind::kDns:
        return RunDns(probe);
      case Probe::Kind::kCommand:
        return RunCommand(probe);
      case Probe::Kind::kGrpcHealth:
        return GrpcHealthProbe(probe).TakeSample();
      case Probe::Kind::kPrometheus:
        return ProbeOutcome{false, {}, "prometheus probes run on the controller"};
    }
  } catch (const std::exception& e) {  // std::stoi
    return ProbeOutcome{false, {}, std::string("probe error: ") + e.what()};
  }
  return ProbeOutcome{false, {}, "unknown probe kind"};
}

}  // namespace faultline::probes
