// Applies one network latency fault through NetworkBackend (no agent, no gRPC) in the current
// network namespace, until SIGINT/SIGTERM, then reverts it. Used by bench/net_bench.sh, which runs
// it inside its scratch namespace. Prints "ready" once applied, the fault's evidence on exit.
//   net_fault_driver <delay_us> <peer-cidr> [queue_first [egress|ingress]]
// delay_us >= 1 (the backend's minimum; 1 us stands for "0 ms through the delay line").
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/netfilter/network_backend.h"

int main(int argc, char** argv) {
  using namespace faultline::agent::netfilter;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DELAY_US PEER_CIDR [QUEUE_FIRST]\n", argv[0]);
    return 2;
  }
  NetworkBackendOptions o;
  if (argc > 3) o.queue_first = static_cast<uint16_t>(std::atoi(argv[3]));
  NetworkBackend backend(o);
  if (auto s = backend.DetectCapability(); !s.ok()) {
    std::fprintf(stderr, "capability: %s\n", s.ToString().c_str());
    return 1;
  }
  faultline::v1::FaultSpec spec;
  auto* net = spec.mutable_network();
  net->mutable_latency()->set_delay_us(static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10)));
  bool ingress = argc > 4 && std::string(argv[4]) == "ingress";
  net->mutable_match()->set_direction(ingress ? faultline::v1::NetworkSelector::INGRESS
                                              : faultline::v1::NetworkSelector::EGRESS);
  net->mutable_match()->add_cidrs(argv[2]);
  if (auto s = backend.Validate(spec); !s.ok()) {
    std::fprintf(stderr, "validate: %s\n", s.ToString().c_str());
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  auto handle = backend.Apply("netbench", spec);
  if (!handle.ok()) {
    std::fprintf(stderr, "apply: %s\n", handle.status().ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  auto st = (*handle)->Revert();
  std::string ev;
  for (const auto& [k, v] : (*handle)->GetEvidence()) ev += k + "=" + std::to_string(v) + " ";
  std::printf("reverted=%s %s\n", st.ok() ? "ok" : st.ToString().c_str(), ev.c_str());
  return st.ok() ? 0 : 1;
}
