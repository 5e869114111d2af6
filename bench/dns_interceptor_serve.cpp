// Applies one real DNS fault (SERVFAIL on a name the benchmark does not query) through the agent's
// DnsBackend in the current network namespace — the nft redirect of every outbound port-53 query
// to the interceptor, exactly as the agent installs it — until SIGINT/SIGTERM, then reverts it.
// Used by bench/dns_bench.sh (inside a scratch namespace) so path (b) is the real one: client ->
// nft redirect -> interceptor -> the resolver the client asked. Prints "ready <port>" once the
// fault is active; on exit the fault's evidence and the interceptor's counters. Needs root.
//   dns_interceptor_serve <intercept-port> <upstream host[:port]> [fault-name]
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/dns/dns_backend.h"
#include "agent/dns/dns_interceptor.h"
#include "common/signals.h"

int main(int argc, char** argv) {
  using namespace faultline::agent::dns;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s INTERCEPT_PORT UPSTREAM [FAULT_NAME]\n", argv[0]);
    return 2;
  }
  // Block the signals before any thread starts, so only sigwait below sees them.
  const faultline::BlockedSignals stop_signals({SIGINT, SIGTERM});

  DnsBackendOptions o;
  o.intercept_port = static_cast<uint16_t>(std::atoi(argv[1]));
  o.upstream = argv[2];
  o.max_outstanding = 4096;
  DnsBackend backend(o);
  if (auto s = backend.DetectCapability(); !s.ok()) {
    std::fprintf(stderr, "capability: %s\n", s.ToString().c_str());
    return 1;
  }
  faultline::v1::FaultSpec spec;
  spec.mutable_dns()->set_mode(faultline::v1::DnsFault::SERVFAIL);
  spec.mutable_dns()->add_domains(argc > 3 ? argv[3] : "faulted.bench.test");
  auto handle = backend.Apply("bench", spec);
  if (!handle.ok()) {
    std::fprintf(stderr, "apply: %s\n", handle.status().ToString().c_str());
    return 1;
  }
  std::printf("ready %s\n", argv[1]);
  std::fflush(stdout);
  stop_signals.Wait();
  auto evidence = (*handle)->GetEvidence();
  auto st = backend.InterceptorStats();
  if (auto s = (*handle)->Revert(); !s.ok()) {
    std::fprintf(stderr, "revert: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf(
      "fault: seen=%lu faulted=%lu | interceptor: seen=%lu passed=%lu faulted=%lu "
      "to_original_destination=%lu overload=%lu timeouts=%lu\n",
      static_cast<unsigned long>(evidence["queries_seen"]),
      static_cast<unsigned long>(evidence["queries_faulted"]),
      static_cast<unsigned long>(st.queries_seen), static_cast<unsigned long>(st.queries_passed),
      static_cast<unsigned long>(st.queries_faulted),
      static_cast<unsigned long>(st.original_destination),
      static_cast<unsigned long>(st.overload_dropped),
      static_cast<unsigned long>(st.upstream_timeouts));
  return 0;
}
