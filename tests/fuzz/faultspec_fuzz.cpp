// libFuzzer target: the shared fault-spec validation library (common/faultspec) on its own, the
// rules both the agent and the experiment parser apply. Input: a FaultSpec in protobuf text
// format (readable, hand-made corpus). What must hold:
//   - ValidateFaultSpec never crashes or hangs, gives the same answer twice, keeps at most
//     FieldProblems::kMaxKept problems, and explains each one (a message; a field path that
//     starts with the kind's name, "" only when there is no kind);
//   - the Status form is OK exactly when there is no problem, and then names the first one;
//   - an accepted spec keeps every repeated field within its bound (kMax* in common/faultspec)
//     and every value the agent turns into kernel state is plain: domains and hosts are DNS
//     names, CIDRs parse, record types have a number, cgroups and pidfiles cannot climb out.
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "common/dns_name.h"
#include "common/faultspec/dependency/dependency_fault.h"
#include "common/faultspec/dns/dns_fault.h"
#include "common/faultspec/fault_kinds.h"
#include "common/faultspec/peer_rules.h"
#include "common/faultspec/process/process_fault.h"
#include "faultline/v1/agent.pb.h"

namespace {

using namespace faultline;
using namespace faultline::faultspec;

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckSelector(const v1::NetworkSelector& m) {
  Check(m.cidrs_size() <= kMaxCidrs && m.exclude_cidrs_size() <= kMaxCidrs);
  Check(m.hosts_size() <= kMaxHosts);
  Check(m.remote_ports_size() <= kMaxPorts && m.local_ports_size() <= kMaxPorts);
  for (const auto& c : m.cidrs()) Check(ParseCidr(c).ok());
  for (const auto& c : m.exclude_cidrs()) Check(ParseCidr(c).ok());
  for (const auto& h : m.hosts()) Check(ValidateDnsName(h, false).ok());
  for (uint32_t p : m.remote_ports()) Check(p >= 1 && p <= 65535);
  for (uint32_t p : m.local_ports()) Check(p >= 1 && p <= 65535);
}

void CheckNoClimbing(const std::string& path) {
  Check(path.find('\0') == std::string::npos);
  for (const auto& part : std::filesystem::path(path)) Check(part != "..");
}

void CheckAccepted(const v1::FaultSpec& spec) {
  switch (spec.kind_case()) {
    case v1::FaultSpec::kDns: {
      const auto& d = spec.dns();
      Check(d.domains_size() >= 1 && d.domains_size() <= kMaxDnsDomains);
      Check(d.record_types_size() <= kMaxDnsRecordTypes);
      Check(d.spoof_addresses_size() <= kMaxDnsSpoofAddresses);
      for (const auto& n : d.domains()) Check(ValidateDnsName(n, true).ok());
      for (const auto& t : d.record_types()) Check(DnsRecordTypeNumber(t).has_value());
      if (!d.cgroup().empty()) CheckNoClimbing(NormalizeCgroupPath(d.cgroup()));
      break;
    }
    case v1::FaultSpec::kNetwork:
      CheckSelector(spec.network().match());
      Check(spec.network().kind_case() != v1::NetworkFault::KIND_NOT_SET);
      break;
    case v1::FaultSpec::kDependency: {
      const auto& f = spec.dependency();
      CheckSelector(f.match());
      Check(f.match().remote_ports_size() >= 1);
      Check(f.toxics_size() <= kMaxToxics);
      for (const auto& t : f.toxics())
        Check(t.kind_case() != v1::DependencyFault::Toxic::KIND_NOT_SET);
      Check(f.http().aborts_size() <= kMaxHttpAborts);
      Check(f.http().methods_size() <= kMaxHttpMethods);
      for (const auto& a : f.http().aborts()) Check(a.body().size() <= kMaxHttpAbortBody);
      break;
    }
    case v1::FaultSpec::kProcess: {
      const auto& p = spec.process();
      Check(p.signal().empty() || IsProcessSignalName(p.signal()));
      if (p.has_pidfile()) {
        Check(!p.pidfile().empty() && p.pidfile().front() == '/');
        CheckNoClimbing(p.pidfile());
      }
      if (p.has_cgroup()) CheckNoClimbing(NormalizeCgroupPath(p.cgroup()));
      if (p.has_name()) Check(!p.name().empty() && p.name().find('/') == std::string::npos);
      Check(p.selector_case() != v1::ProcessFault::SELECTOR_NOT_SET);
      break;
    }
    case v1::FaultSpec::KIND_NOT_SET:
      std::abort();  // accepted without a kind
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 256 * 1024) return 0;
  v1::FaultSpec spec;
  google::protobuf::TextFormat::Parser parser;
  parser.AllowPartialMessage(true);
  class Silent : public google::protobuf::io::ErrorCollector {
    void AddError(int, int, const std::string&) override {}
  } silent;
  parser.RecordErrorsTo(&silent);
  if (!parser.ParseFromString(std::string(reinterpret_cast<const char*>(data), size), &spec)) {
    return 0;
  }
  for (bool later : {false, true}) {
    SpecValidationOptions options;
    options.partition_peers_added_later = later;
    FieldProblems problems, again;
    ValidateFaultSpec(spec, options, &problems);
    ValidateFaultSpec(spec, options, &again);
    Check(problems.problems().size() == again.problems().size());
    Check(problems.problems().size() <= FieldProblems::kMaxKept);
    const std::string_view kind = FaultKindName(spec);
    for (size_t i = 0; i < problems.problems().size(); ++i) {
      const FieldProblem& p = problems.problems()[i];
      Check(p.field == again.problems()[i].field && p.message == again.problems()[i].message);
      Check(!p.message.empty());
      Check(kind.empty() ? p.field.empty() : p.field.rfind(kind, 0) == 0);
    }
    if (!later) {
      Status s = ValidateFaultSpec(spec);
      Check(s.ok() == problems.ok());
      if (!s.ok()) Check(s.message() == problems.problems().front().ToString());
    }
    if (problems.ok()) CheckAccepted(spec);
  }
  return 0;
}
