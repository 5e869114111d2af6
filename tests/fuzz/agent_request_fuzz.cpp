// libFuzzer target: the agent's validation of an ApplyFaultRequest (protobuf text format, so the
// corpus is readable and hand-made), i.e. everything a request passes before anything reaches
// the journal or the kernel: FaultManager::ValidateRequest with the agent's real backends
// registered (dns, network, dependency, process), exactly what Apply runs first. Nothing is ever
// applied and no capability is detected (no kernel access). Whatever is accepted must be safe to
// use:
//   - run and fault ids and DNS domains carry no whitespace, quotes, shell or nft syntax
//     characters (they name nft tables and journal files, and end up in the DNS matcher);
//   - the nft batches a network or dependency fault turns into are only our own commands: every
//     line an add/delete/flush, no ';' or '#' smuggled in from a field;
//   - process selectors: a name without '/', a pidfile that is absolute without '..'
//     components, a cgroup path without '.'/'..' components;
//   - the dependency fault's per-connection parts (toxic plan, HTTP request gate, abort
//     response) run on the accepted configuration without crashing.
// A rejected request must say why (a non-empty message).
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>

#include "agent/dns/dns_backend.h"
#include "agent/fault_manager.h"
#include "agent/fault_registry.h"
#include "agent/journal.h"
#include "agent/netfilter/network_backend.h"
#include "agent/netfilter/network_rules.h"
#include "agent/process/process_backend.h"
#include "agent/process/process_selector.h"
#include "agent/proxy/proxy_backend.h"
#include "agent/proxy/proxy_rules.h"
#include "common/clock.h"
#include "common/ids.h"
#include "faultline/v1/agent.pb.h"

namespace {

using namespace faultline;

void Check(bool ok) {
  if (!ok) std::abort();
}

bool HasUnsafeCharacter(const std::string& s) {
  for (unsigned char c : s) {
    if (c <= ' ' || c >= 0x7f) return true;
    if (std::string("\"'`$;|&<>(){}[]\\#!,=/").find(static_cast<char>(c)) != std::string::npos) {
      return true;
    }
  }
  return false;
}

// Every line of an nft batch is one of our commands; nothing from a field adds another one. A ';'
// (nft's command separator) may only end the declarations we write ourselves inside braces
// ("type ipv4_addr;", "flags interval;", "auto-merge;", "priority -100;", "policy accept;").
void CheckNftBatch(const std::string& batch) {
  auto CheckIn = [](const std::string& b, bool ok) {
    if (!ok) std::fprintf(stderr, "nft batch:\n%s\n", b.c_str());
    Check(ok);
  };
  CheckIn(batch, batch.find('#') == std::string::npos);
  for (size_t semi = batch.find(';'); semi != std::string::npos; semi = batch.find(';', semi + 1)) {
    const size_t space = batch.rfind(' ', semi);
    CheckIn(batch, space != std::string::npos);
    const std::string word = batch.substr(space + 1, semi - space - 1);
    const bool number = !word.empty() && word.find_first_not_of("-0123456789") == std::string::npos;
    CheckIn(batch, number || word == "ipv4_addr" || word == "ipv6_addr" || word == "interval" ||
                       word == "auto-merge" || word == "accept");
  }
  std::istringstream lines(batch);
  std::string line;
  while (std::getline(lines, line)) {
    CheckIn(batch, line.rfind("add ", 0) == 0 || line.rfind("delete ", 0) == 0 ||
                       line.rfind("flush ", 0) == 0);
  }
}

// The agent's registry and manager, built once: the real backends (constructed only, never
// detected, so nothing touches the kernel) behind the FaultManager with a throwaway journal.
struct Agent {
  agent::FaultRegistry registry;
  std::string journal_dir;
  std::unique_ptr<agent::Journal> journal;
  SystemClock clock;
  std::unique_ptr<agent::FaultManager> manager;

  Agent() {
    Check(
        registry.Register(std::make_unique<agent::dns::DnsBackend>(agent::dns::DnsBackendOptions{}))
            .ok());
    Check(registry
              .Register(std::make_unique<agent::netfilter::NetworkBackend>(
                  agent::netfilter::NetworkBackendOptions{}))
              .ok());
    Check(registry
              .Register(
                  std::make_unique<agent::proxy::ProxyBackend>(agent::proxy::ProxyBackendOptions{}))
              .ok());
    agent::process::ProcessBackendOptions process;
    process.scope = agent::process::SelectionScope{};  // no look at this host's namespaces
    Check(registry.Register(std::make_unique<agent::process::ProcessBackend>(process)).ok());
    char dir[] = "/tmp/faultline-fuzz-journal.XXXXXX";
    Check(mkdtemp(dir) != nullptr);
    journal_dir = dir;
    // The agent is never destroyed (one per process, reached through a static pointer); its
    // journal directory, empty since nothing is ever applied, is removed at exit.
    static std::string* dir_to_remove = &journal_dir;
    std::atexit([] { std::filesystem::remove_all(*dir_to_remove); });
    auto opened = agent::Journal::Open(journal_dir);
    Check(opened.ok());
    journal = std::move(*opened);
    manager = std::make_unique<agent::FaultManager>(registry, *journal, clock,
                                                    agent::FaultManagerOptions{});
  }
};

void CheckAcceptedDependency(const v1::DependencyFault& fault) {
  agent::proxy::RedirectOptions o;
  o.socket_mark = 0x464d;
  o.port = 15000;
  o.ipv6 = true;
  CheckNftBatch(agent::proxy::RedirectApplyBatch("faultline_fuzz", fault, o, {"fd00::1"}));
  CheckNftBatch(agent::proxy::RedirectPeerUpdateBatch("faultline_fuzz", fault, {"10.0.0.1"}));
  double u = 0.0;
  auto uniform = [&u] {
    u += 0.37;
    if (u >= 1.0) u -= 1.0;
    return u;
  };
  auto plan = agent::proxy::PlanToxics(fault, uniform);
  for (const auto& t : plan.upstream) Check(agent::proxy::ToxicKindName(t) != "none");
  for (const auto& t : plan.downstream) Check(agent::proxy::ToxicKindName(t) != "none");
  if (!fault.has_http()) return;
  for (const auto& a : fault.http().aborts()) {
    std::string r = agent::proxy::AbortResponse(a.status(), a.body());
    Check(r.rfind("HTTP/1.1 " + std::to_string(a.status()) + " ", 0) == 0);
    Check(r.size() >= a.body().size() &&
          r.compare(r.size() - a.body().size(), std::string::npos, a.body()) == 0);
  }
  agent::proxy::HttpRequestGate gate(fault.http(), uniform);
  const std::string path = fault.http().path_prefix().empty() ? "/" : fault.http().path_prefix();
  const std::string method = fault.http().methods().empty() ? "GET" : fault.http().methods(0);
  auto out =
      gate.Feed(method + " " + path + "x HTTP/1.1\r\nHost: db\r\nContent-Length: 3\r\n\r\nabc" +
                method + " /other HTTP/1.1\r\nHost: db\r\n\r\n");
  Check(out.abort == !out.response.empty());
}

void CheckAcceptedProcess(const v1::ProcessFault& fault) {
  switch (fault.selector_case()) {
    case v1::ProcessFault::kName:
      Check(!fault.name().empty() && fault.name().find('/') == std::string::npos &&
            fault.name().find('\0') == std::string::npos);
      break;
    case v1::ProcessFault::kPidfile: {
      const std::string& p = fault.pidfile();
      Check(!p.empty() && p.front() == '/' && p.find('\0') == std::string::npos);
      for (const auto& part : std::filesystem::path(p)) Check(part != "..");
      break;
    }
    case v1::ProcessFault::kCgroup: {
      const std::string c = agent::process::NormalizedCgroup(fault.cgroup());
      Check(!c.empty() && c.find('\0') == std::string::npos);
      for (const auto& part : std::filesystem::path(c)) Check(part != ".." && part != ".");
      break;
    }
    default:
      std::abort();  // accepted without a selector
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  v1::ApplyFaultRequest request;
  google::protobuf::TextFormat::Parser parser;
  parser.AllowPartialMessage(true);
  // Quiet: a malformed text proto is expected, not news.
  class Silent : public google::protobuf::io::ErrorCollector {
    void AddError(int, int, const std::string&) override {}
  } silent;
  parser.RecordErrorsTo(&silent);
  if (!parser.ParseFromString(std::string(reinterpret_cast<const char*>(data), size), &request)) {
    return 0;
  }
  static Agent* agent = new Agent();
  const bool ids_ok = IsValidRunId(request.run_id()) && IsValidFaultId(request.fault_id());
  if (ids_ok)
    Check(!HasUnsafeCharacter(request.run_id()) && !HasUnsafeCharacter(request.fault_id()));

  // What the agent answers, and what each backend says of the spec alone (so a request that
  // fails on its ids or ttl still drives the spec's validation).
  Status valid = agent->manager->ValidateRequest(request);
  const std::string kind = agent::FaultKindOf(request.spec());
  agent::FaultBackend* backend = agent->registry.Find(kind);
  Status spec_valid =
      backend == nullptr ? InvalidArgument("no kind") : backend->Validate(request.spec());
  Check(valid.ok() || !valid.message().empty());
  Check(spec_valid.ok() || !spec_valid.message().empty());
  if (valid.ok()) Check(ids_ok && spec_valid.ok());
  if (!spec_valid.ok()) return 0;

  const v1::FaultSpec& spec = request.spec();
  switch (spec.kind_case()) {
    case v1::FaultSpec::kDns:
      for (const std::string& domain : spec.dns().domains()) {
        // '*' is the wildcard label; everything else must be a plain DNS name.
        std::string rest = domain.rfind("*.", 0) == 0 ? domain.substr(2) : domain;
        Check(!rest.empty() && !HasUnsafeCharacter(rest) && rest.find('*') == std::string::npos);
      }
      break;
    case v1::FaultSpec::kNetwork: {
      agent::netfilter::NetworkRuleOptions o;
      o.control_port = 7700;
      if (agent::netfilter::QueuedFault(spec.network())) {
        o.queue_mark = 1u << 20;
        o.bypass_mark = 1u << 19;
      }
      CheckNftBatch(agent::netfilter::NetworkApplyBatch("faultline_fuzz", spec.network(), o,
                                                        {"10.0.0.1", "fd00::1"}));
      CheckNftBatch(
          agent::netfilter::PeerSetUpdateBatch("faultline_fuzz", spec.network(), {"10.0.0.2"}));
      break;
    }
    case v1::FaultSpec::kDependency:
      CheckAcceptedDependency(spec.dependency());
      break;
    case v1::FaultSpec::kProcess:
      CheckAcceptedProcess(spec.process());
      break;
    case v1::FaultSpec::KIND_NOT_SET:
      std::abort();  // a backend accepted a spec without a kind
  }
  return 0;
}
