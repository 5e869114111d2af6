// Applies one network latency fault through NetworkBackend (no agent, no gRPC) in the current
// network namespace, until SIGINT/SIGTERM, then reverts it. Used by bench/net_bench.sh, which runs
// it inside its scratch namespace. Prints "ready" once applied, the fault's evidence on exit.
//   net_fault_driver <delay_us> <peer-cidr> [queue_first [egress|ingress [rt_priority]]]
// delay_us >= 1 (the backend's minimum; 1 us stands for "0 ms through the delay line").
//   net_fault_driver spec <fault-id> <FaultSpec JSON> [apply-count] [realtime-priority]
// applies a network or dependency fault through the agent's FaultManager (journal in a temp dir;
// the real NetworkBackend and ProxyBackend), apply-count times with the same id (idempotence), and
// on SIGTERM reverts it and prints its final status as JSON (used by
// tests/integration/network_traffic_test.sh and proxy_ipv6_test.sh).
#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "agent/fault_manager.h"
#include "agent/fault_registry.h"
#include "agent/journal.h"
#include "agent/netfilter/network_backend.h"
#include "agent/proxy/proxy_backend.h"
#include "common/clock.h"
#include "common/signals.h"

namespace {

int SpecMode(int argc, char** argv) {
  using namespace faultline;
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s spec FAULT_ID SPEC_JSON [APPLY_COUNT] [RT_PRIORITY]\n",
                 argv[0]);
    return 2;
  }
  v1::ApplyFaultRequest req;
  req.set_run_id("nettest");
  req.set_fault_id(argv[2]);
  req.set_lease_ttl_ms(120'000);
  if (!google::protobuf::util::JsonStringToMessage(argv[3], req.mutable_spec()).ok()) {
    std::fprintf(stderr, "spec: not a FaultSpec in JSON: %s\n", argv[3]);
    return 2;
  }
  int count = argc > 4 ? std::atoi(argv[4]) : 1;
  agent::netfilter::NetworkBackendOptions o;
  if (argc > 5) o.realtime_priority = std::atoi(argv[5]);
  o.queue_first = 3400;  // not the agent's default range: a sandbox agent may run alongside
  agent::FaultRegistry registry;
  (void)registry.Register(std::make_unique<agent::netfilter::NetworkBackend>(o));
  (void)registry.Register(
      std::make_unique<agent::proxy::ProxyBackend>(agent::proxy::ProxyBackendOptions{}));
  registry.DetectAll();
  char dir[] = "/tmp/nz-journal.XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  auto journal = agent::Journal::Open(dir);
  if (!journal.ok()) return 1;
  SystemClock clock;
  agent::FaultManager manager(registry, **journal, clock, {});
  const faultline::BlockedSignals stop({SIGINT, SIGTERM});
  for (int i = 0; i < count; ++i) {
    auto st = manager.Apply(req);
    if (!st.ok()) {
      std::fprintf(stderr, "apply %d: %s\n", i + 1, st.status().ToString().c_str());
      (void)manager.Shutdown();
      return 1;
    }
  }
  std::printf("ready\n");
  std::fflush(stdout);
  stop.Wait();
  auto final_status = manager.Revert(req.fault_id(), "request");
  std::string json;
  if (final_status.ok() && *final_status) {
    (void)google::protobuf::util::MessageToJsonString(**final_status, &json);
  }
  std::printf("%s\n", json.c_str());
  (void)manager.Shutdown();
  std::filesystem::remove_all(dir);
  return final_status.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace faultline::agent::netfilter;
  if (argc > 1 && std::string(argv[1]) == "spec") return SpecMode(argc, argv);
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s DELAY_US PEER_CIDR [QUEUE_FIRST]\n", argv[0]);
    return 2;
  }
  NetworkBackendOptions o;
  if (argc > 3) o.queue_first = static_cast<uint16_t>(std::atoi(argv[3]));
  if (argc > 5) o.realtime_priority = std::atoi(argv[5]);
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
  const faultline::BlockedSignals stop({SIGINT, SIGTERM});
  auto handle = backend.Apply("netbench", spec);
  if (!handle.ok()) {
    std::fprintf(stderr, "apply: %s\n", handle.status().ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  stop.Wait();
  auto st = (*handle)->Revert();
  std::string ev;
  for (const auto& [k, v] : (*handle)->GetEvidence()) ev += k + "=" + std::to_string(v) + " ";
  std::printf("reverted=%s %s\n", st.ok() ? "ok" : st.ToString().c_str(), ev.c_str());
  return st.ok() ? 0 : 1;
}
