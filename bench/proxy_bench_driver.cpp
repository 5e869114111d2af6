// Benchmark helper for bench/proxy_bench.sh (not product code): applies one dependency fault
// through ProxyBackend in the current network namespace (real nft redirect, real proxy), prints
// "ready", waits for SIGINT/SIGTERM, reverts and prints the fault's evidence on one line.
//   proxy_bench_driver PORTS CIDR [LATENCY_US]   PORTS comma-separated; no toxic, or a downstream
//                                                latency toxic
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "agent/proxy/proxy_backend.h"
#include "common/signals.h"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) {
    std::fprintf(stderr, "usage: %s PORTS CIDR [LATENCY_US]\n", argv[0]);
    return 2;
  }
  const faultline::BlockedSignals stop({SIGINT, SIGTERM});

  faultline::v1::FaultSpec spec;
  auto* dep = spec.mutable_dependency();
  for (std::string ports = argv[1]; !ports.empty();) {
    size_t comma = ports.find(',');
    dep->mutable_match()->add_remote_ports(static_cast<uint32_t>(std::atoi(ports.c_str())));
    ports = comma == std::string::npos ? "" : ports.substr(comma + 1);
  }
  dep->mutable_match()->add_cidrs(argv[2]);
  if (argc == 4) {
    auto* t = dep->add_toxics();
    t->set_direction(faultline::v1::DependencyFault::Toxic::DOWNSTREAM);
    t->mutable_latency()->set_latency_us(static_cast<uint32_t>(std::atol(argv[3])));
  }
  faultline::agent::proxy::ProxyBackendOptions options;
  // PX_SPLICE=0: untouched directions through user-space read/write instead of the default
  // splice(2) (to compare the two paths).
  const char* splice = std::getenv("PX_SPLICE");
  options.splice = splice == nullptr || std::string(splice) != "0";
  // PX_SLICE_US=N: the loop thread's scheduler slice request (0 = kernel default).
  if (const char* slice = std::getenv("PX_SLICE_US")) options.sched_slice_us = std::atoi(slice);
  faultline::agent::proxy::ProxyBackend backend(options);
  if (auto s = backend.DetectCapability(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 1;
  }
  auto handle = backend.Apply("pxbench", spec);
  if (!handle.ok()) {
    std::fprintf(stderr, "%s\n", handle.status().ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  stop.Wait();
  auto evidence = (*handle)->GetEvidence();
  auto s = (*handle)->Revert();
  std::string line;
  for (const auto& [k, v] : evidence) {
    if (v != 0) line += k + "=" + std::to_string(v) + " ";
  }
  std::printf("%s\n", line.c_str());
  return s.ok() ? 0 : 1;
}
