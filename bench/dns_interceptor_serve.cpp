// Runs a DnsInterceptor on 127.0.0.1:<port> with one fault rule on a name the benchmark does not
// query, until SIGINT/SIGTERM. Used by bench/dns_bench.sh to put Faultline's interceptor between
// dnsperf and an upstream dnsmasq. Prints "ready <port>" once serving, the interceptor's counters
// on exit.
//   dns_interceptor_serve <port> <upstream host:port> [fault-name]
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/dns/dns_interceptor.h"
#include "agent/dns/dns_matcher.h"

int main(int argc, char** argv) {
  using namespace faultline::agent::dns;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s PORT UPSTREAM [FAULT_NAME]\n", argv[0]);
    return 2;
  }
  DnsInterceptorOptions o;
  o.port = static_cast<uint16_t>(std::atoi(argv[1]));
  o.upstream = argv[2];
  o.max_outstanding = 4096;
  o.listen_ipv6_loopback = true;
  // As the agent does: the mark lets its upstream queries bypass an nft redirect (needs root).
  o.socket_mark = geteuid() == 0 ? 0x464c : 0;
  auto matcher = DomainMatcher::Create({argc > 3 ? argv[3] : "faulted.bench.test"});
  if (!matcher.ok()) return 2;
  DnsInterceptor interceptor(o);
  if (auto s = interceptor.Start(); !s.ok()) {
    std::fprintf(stderr, "start: %s\n", s.ToString().c_str());
    return 1;
  }
  if (!interceptor.AddRule("bench", std::move(*matcher), faultline::v1::DnsFault::SERVFAIL).ok()) {
    return 1;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::printf("ready %u\n", interceptor.port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  auto st = interceptor.GetStats();
  interceptor.Stop();
  std::printf("seen=%lu passed=%lu faulted=%lu overload=%lu timeouts=%lu\n",
              static_cast<unsigned long>(st.queries_seen),
              static_cast<unsigned long>(st.queries_passed),
              static_cast<unsigned long>(st.queries_faulted),
              static_cast<unsigned long>(st.overload_dropped),
              static_cast<unsigned long>(st.upstream_timeouts));
  return 0;
}
