#include "common/probes/probe_request.h"

#include <arpa/inet.h>
#include <re2/re2.h>

#include <algorithm>
#include <cctype>

#include "common/dns_name.h"
#include "common/faultspec/workload_selector.h"

namespace faultline::probes {

using std::chrono::milliseconds;

namespace {

int64_t Ms(Duration d) { return std::chrono::duration_cast<milliseconds>(d).count(); }

bool IsIp(const std::string& s) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, s.c_str(), &a4) == 1 || inet_pton(AF_INET6, s.c_str(), &a6) == 1;
}

// An IP address or a DNS name.
Status CheckHost(const std::string& host, const std::string& field) {
  if (host.empty()) return InvalidArgument(field + ": empty host");
  if (IsIp(host)) return Status::Ok();
  if (Status s = ValidateDnsName(host, false); !s.ok()) {
    return InvalidArgument(field + ": " + s.message());
  }
  return Status::Ok();
}

Status CheckPort(int64_t port, const std::string& field) {
  if (port < 1 || port > 65535) {
    return InvalidArgument(field + ": port must be 1..65535, got " + std::to_string(port));
  }
  return Status::Ok();
}

// host:port with host a name, an IPv4 address or [IPv6].
Status CheckHostPort(const std::string& address, const std::string& field) {
  if (address.size() > 512) return InvalidArgument(field + ": longer than 512 bytes");
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return InvalidArgument(field + ": must be host:port");
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return InvalidArgument(field + ": the port of '" + address + "' is not a number");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (!IsIp(host)) return InvalidArgument(field + ": '" + host + "' is not an IPv6 address");
  } else if (Status s = CheckHost(host, field); !s.ok()) {
    return s;
  }
  return CheckPort(std::stoi(port), field);
}

Status CheckRegex(const std::string& pattern, const std::string& field) {
  if (pattern.size() > kMaxProbeRegexBytes) {
    return InvalidArgument(field + ": longer than " + std::to_string(kMaxProbeRegexBytes) +
                           " bytes");
  }
  RE2 re(pattern, RE2::Quiet);
  if (!re.ok()) return InvalidArgument(field + ": not a valid RE2 pattern: " + re.error());
  return Status::Ok();
}

Status CheckName(const std::string& name) {
  if (name.empty() || name.size() > 64 ||
      !std::all_of(name.begin(), name.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '_' || c == '.' || c == '-';
      })) {
    return InvalidArgument("name: must be [A-Za-z0-9_.-]{1,64}");
  }
  return Status::Ok();
}

}  // namespace

Result<v1::ProbeRequest> MakeProbeRequest(const ProbeSpec& spec, const std::string& run_id,
                                          Duration duration) {
  v1::ProbeRequest r;
  r.set_run_id(run_id);
  r.set_name(spec.name);
  r.set_timeout_ms(static_cast<uint32_t>(std::max<int64_t>(0, Ms(spec.timeout))));
  r.set_interval_ms(static_cast<uint32_t>(std::max<int64_t>(0, Ms(spec.interval))));
  r.set_duration_ms(static_cast<uint32_t>(std::clamp<int64_t>(Ms(duration), 0, UINT32_MAX)));
  switch (spec.kind) {
    case ProbeSpec::Kind::kHttp: {
      auto* h = r.mutable_http();
      h->set_url(spec.http.url);
      h->set_expect_status(static_cast<uint32_t>(spec.http.expect_status));
      if (spec.http.body_regex) h->set_body_regex(*spec.http.body_regex);
      if (spec.http.max_latency) {
        h->set_max_latency_ms(
            static_cast<uint32_t>(std::max<int64_t>(1, Ms(*spec.http.max_latency))));
      }
      break;
    }
    case ProbeSpec::Kind::kTcp:
      r.mutable_tcp()->set_host(spec.tcp.host);
      r.mutable_tcp()->set_port(static_cast<uint32_t>(spec.tcp.port));
      break;
    case ProbeSpec::Kind::kDns:
      r.mutable_dns()->set_name(spec.dns.name);
      r.mutable_dns()->set_server(spec.dns.server);
      r.mutable_dns()->set_expect(spec.dns.expect);
      break;
    case ProbeSpec::Kind::kGrpcHealth:
      if (!spec.grpc_health.ca_file.empty() || !spec.grpc_health.cert_file.empty()) {
        return InvalidArgument("probe " + spec.name +
                               ": a grpc_health probe run from an agent cannot name TLS files "
                               "(the agent reads no file a caller names; the system's roots "
                               "are used)");
      }
      r.mutable_grpc_health()->set_address(spec.grpc_health.address);
      r.mutable_grpc_health()->set_service(spec.grpc_health.service);
      r.mutable_grpc_health()->set_tls(spec.grpc_health.tls);
      r.mutable_grpc_health()->set_server_name(spec.grpc_health.server_name);
      break;
    case ProbeSpec::Kind::kCommand:
      for (const auto& a : spec.command.argv) r.mutable_command()->add_argv(a);
      r.mutable_command()->set_expect_exit(spec.command.expect_exit);
      if (spec.command.output_regex)
        r.mutable_command()->set_output_regex(*spec.command.output_regex);
      break;
    case ProbeSpec::Kind::kPrometheus:
      return InvalidArgument("probe " + spec.name +
                             ": prometheus probes run from the controller only");
  }
  return r;
}

Result<ProbeSpec> ProbeSpecFromRequest(const v1::ProbeRequest& request,
                                       const std::vector<std::string>& allowed_commands,
                                       Duration* duration) {
  ProbeSpec spec;
  if (Status s = CheckName(request.name()); !s.ok()) return s;
  spec.name = request.name();
  spec.interval = milliseconds(request.interval_ms());
  spec.timeout = milliseconds(request.timeout_ms());
  if (spec.interval < kMinProbeInterval || spec.interval > kMaxProbeInterval) {
    return InvalidArgument("interval_ms: must be 50..60000, got " +
                           std::to_string(request.interval_ms()));
  }
  if (spec.timeout < kMinProbeTimeout || spec.timeout > kMaxProbeTimeout) {
    return InvalidArgument("timeout_ms: must be 10..60000, got " +
                           std::to_string(request.timeout_ms()));
  }
  if (spec.timeout > 10 * spec.interval) {
    return InvalidArgument("timeout_ms: at most 10 intervals (" +
                           std::to_string(10 * request.interval_ms()) + "), got " +
                           std::to_string(request.timeout_ms()));
  }
  Duration d = milliseconds(request.duration_ms());
  if (d > kMaxProbeDuration) return InvalidArgument("duration_ms: at most 24 h");
  *duration = d;

  switch (request.kind_case()) {
    case v1::ProbeRequest::kHttp: {
      const auto& h = request.http();
      spec.kind = ProbeSpec::Kind::kHttp;
      if (h.url().size() > kMaxProbeUrlBytes)
        return InvalidArgument("http.url: longer than 2048 bytes");
      if (h.url().rfind("http://", 0) != 0 && h.url().rfind("https://", 0) != 0) {
        return InvalidArgument("http.url: must start with http:// or https://");
      }
      if (std::any_of(h.url().begin(), h.url().end(),
                      [](unsigned char c) { return c <= 0x20 || c == 0x7f; })) {
        return InvalidArgument("http.url: contains a space or control character");
      }
      if (h.expect_status() < 100 || h.expect_status() > 599) {
        return InvalidArgument("http.expect_status: must be 100..599");
      }
      spec.http.url = h.url();
      spec.http.expect_status = static_cast<int>(h.expect_status());
      if (!h.body_regex().empty()) {
        if (Status s = CheckRegex(h.body_regex(), "http.body_regex"); !s.ok()) return s;
        spec.http.body_regex = h.body_regex();
      }
      if (h.max_latency_ms() > 0) {
        if (milliseconds(h.max_latency_ms()) > kMaxProbeTimeout) {
          return InvalidArgument("http.max_latency_ms: at most 60000");
        }
        spec.http.max_latency = milliseconds(h.max_latency_ms());
      }
      break;
    }
    case v1::ProbeRequest::kTcp:
      spec.kind = ProbeSpec::Kind::kTcp;
      if (request.tcp().host().size() > 253)
        return InvalidArgument("tcp.host: longer than 253 bytes");
      if (Status s = CheckHost(request.tcp().host(), "tcp.host"); !s.ok()) return s;
      if (Status s = CheckPort(request.tcp().port(), "tcp.port"); !s.ok()) return s;
      spec.tcp.host = request.tcp().host();
      spec.tcp.port = static_cast<int>(request.tcp().port());
      break;
    case v1::ProbeRequest::kDns: {
      const auto& d = request.dns();
      spec.kind = ProbeSpec::Kind::kDns;
      if (Status s = ValidateDnsName(d.name(), false); !s.ok()) {
        return InvalidArgument("dns.name: " + s.message());
      }
      if (!d.server().empty()) {
        std::string host = d.server();
        if (host.size() > 64) return InvalidArgument("dns.server: longer than 64 bytes");
        if (auto colon = host.rfind(':'); colon != std::string::npos && host.find(':') == colon) {
          std::string port = host.substr(colon + 1);
          if (port.empty() || port.size() > 5 ||
              !std::all_of(port.begin(), port.end(),
                           [](unsigned char c) { return std::isdigit(c); })) {
            return InvalidArgument("dns.server: the port is not a number");
          }
          if (Status s = CheckPort(std::stoi(port), "dns.server"); !s.ok()) return s;
          host = host.substr(0, colon);
        }
        if (!IsIp(host)) return InvalidArgument("dns.server: must be an IP address[:port]");
      }
      static const char* kExpect[] = {"answer",   "noerror",  "nodata",
                                      "nxdomain", "servfail", "refused"};
      if (std::none_of(std::begin(kExpect), std::end(kExpect),
                       [&](const char* e) { return d.expect() == e; })) {
        return InvalidArgument(
            "dns.expect: must be answer, noerror, nodata, nxdomain, servfail "
            "or refused");
      }
      spec.dns.name = d.name();
      spec.dns.server = d.server();
      spec.dns.expect = d.expect();
      break;
    }
    case v1::ProbeRequest::kGrpcHealth: {
      const auto& g = request.grpc_health();
      spec.kind = ProbeSpec::Kind::kGrpcHealth;
      if (Status s = CheckHostPort(g.address(), "grpc_health.address"); !s.ok()) return s;
      if (g.service().size() > 256)
        return InvalidArgument("grpc_health.service: longer than 256 bytes");
      if (!g.server_name().empty()) {
        if (Status s = ValidateDnsName(g.server_name(), false); !s.ok()) {
          return InvalidArgument("grpc_health.server_name: " + s.message());
        }
      }
      spec.grpc_health.address = g.address();
      spec.grpc_health.service = g.service();
      spec.grpc_health.tls = g.tls();
      spec.grpc_health.server_name = g.server_name();
      break;
    }
    case v1::ProbeRequest::kCommand: {
      const auto& c = request.command();
      spec.kind = ProbeSpec::Kind::kCommand;
      if (c.argv().empty()) return InvalidArgument("command.argv: empty");
      if (static_cast<size_t>(c.argv_size()) > kMaxProbeArgs) {
        return InvalidArgument("command.argv: more than 64 entries");
      }
      for (const auto& a : c.argv()) {
        if (a.size() > kMaxProbeArgBytes || a.find('\0') != std::string::npos) {
          return InvalidArgument("command.argv: an entry is longer than 4096 bytes or holds NUL");
        }
      }
      const std::string& program = c.argv(0);
      if (std::find(allowed_commands.begin(), allowed_commands.end(), program) ==
          allowed_commands.end()) {
        return Status(
            StatusCode::kPermissionDenied,
            "command probe: this agent runs only the programs its own "
            "--allow-probe-command lists, and '" +
                program + "' is not one of them" +
                (allowed_commands.empty() ? std::string(" (none is listed)") : std::string()));
      }
      if (!c.output_regex().empty()) {
        if (Status s = CheckRegex(c.output_regex(), "command.output_regex"); !s.ok()) return s;
        spec.command.output_regex = c.output_regex();
      }
      spec.command.argv.assign(c.argv().begin(), c.argv().end());
      spec.command.expect_exit = c.expect_exit();
      break;
    }
    case v1::ProbeRequest::KIND_NOT_SET:
      return InvalidArgument("kind: one of http, tcp, dns, grpc_health, command is required");
  }
  if (request.has_workload()) {
    // The same rules as a fault's workload: the agent resolves it, never a caller's namespace.
    faultspec::FieldProblems problems;
    faultspec::ValidateWorkloadSelector(request.workload(), "workload", &problems);
    if (!problems.ok()) return problems.ToStatus();
  }
  return spec;
}

}  // namespace faultline::probes
