// Faults inside a workload's network namespace through the agent's FaultManager and the real
// backends, each behind a WorkloadRouter exactly as faultline-agent registers them (no gRPC).
//
//   workload_fault_driver apply STATE_DIR REQUEST_JSON
//     Applies one ApplyFaultRequest (JSON; with resolved_workload for a workload, without for
//     the driver's own namespace), journal in STATE_DIR/journal and table records in
//     STATE_DIR/tables (the layout of faultline-agent --state-dir, so a faultline-agent started
//     on STATE_DIR after a kill -9 of this driver reverts from its journal). Prints "ready" and
//     the evidence once applied; on SIGTERM reverts and prints the final FaultStatus as JSON.
//     Used by tests/integration/netns_faults_test.sh.
//
//   workload_fault_driver bench RUNS NETNS_PATH
//     Apply + revert latency of a DNS fault (nxdomain for one name) in the driver's namespace
//     ("host") and inside NETNS_PATH, RUNS times each, interleaved; prints every sample's
//     milliseconds and the medians and their ratio. Used by bench/netns_bench.sh.
#include <google/protobuf/util/json_util.h>
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/backend_module.h"
#include "agent/fault_manager.h"
#include "agent/fault_registry.h"
#include "agent/host/deadman_switch.h"
#include "agent/host/fault_tables.h"
#include "agent/host/nft_ruleset.h"
#include "agent/journal.h"
#include "agent/netns_backends.h"
#include "agent/workload_router.h"
#include "common/clock.h"
#include "common/signals.h"

namespace {

using namespace faultline;
using namespace faultline::agent;

// The built-in kinds as faultline-agent registers them: every kind's module with its default
// flags (NFQUEUE numbers from 3500: not the agent's default range, an agent may run alongside),
// each backend behind a WorkloadRouter with ModuleInNetns (state under `state_dir`). `modules`
// must outlive `registry`.
void RegisterAll(FaultRegistry& registry, const std::string& state_dir,
                 std::vector<std::unique_ptr<BackendModule>>& modules) {
  modules = BuiltinBackendModules();
  CLI::App app;
  for (const auto& module : modules) module->AddFlags(app);
  std::vector<std::string> args = {"--nfqueue-first", "3500"};
  std::reverse(args.begin(), args.end());  // CLI11 parses a vector from its back
  app.parse(args);
  NetnsBackendSettings settings;
  settings.state_dir = state_dir;
  settings.table_record_dir = state_dir + "/tables";
  BackendEnvironment env;
  env.state_dir = state_dir;
  env.tables = std::make_shared<host::FaultTables>(std::make_shared<host::NftRuleset>(),
                                                   std::make_shared<host::DeadmanSwitch>(),
                                                   settings.table_record_dir);
  for (const auto& module : modules) {
    if (!module->CheckFlags().ok()) continue;
    auto backend = module->MakeBackend(env);
    if (!backend.ok()) continue;
    auto router =
        std::make_unique<WorkloadRouter>(std::move(*backend), ModuleInNetns(*module, settings));
    router->FollowRestarts(ResolveByNetnsPath, std::chrono::milliseconds(200));
    (void)registry.Register(std::move(router));
  }
  registry.DetectAll();
}

int ApplyMode(const std::string& state_dir, const std::string& json) {
  v1::ApplyFaultRequest req;
  if (!google::protobuf::util::JsonStringToMessage(json, &req).ok()) {
    std::fprintf(stderr, "not an ApplyFaultRequest in JSON: %s\n", json.c_str());
    return 2;
  }
  if (req.lease_ttl_ms() == 0) req.set_lease_ttl_ms(120'000);
  if (req.run_id().empty()) req.set_run_id("netnstest");
  std::vector<std::unique_ptr<BackendModule>> modules;
  FaultRegistry registry;
  RegisterAll(registry, state_dir, modules);
  auto journal = Journal::Open(state_dir + "/journal");
  if (!journal.ok()) {
    std::fprintf(stderr, "%s\n", journal.status().ToString().c_str());
    return 1;
  }
  SystemClock clock;
  FaultManager manager(registry, **journal, clock, {});
  const BlockedSignals stop({SIGINT, SIGTERM});
  auto applied = manager.Apply(req);
  if (!applied.ok()) {
    std::fprintf(stderr, "apply: %s\n", applied.status().ToString().c_str());
    return 1;
  }
  std::printf("ready\n");
  std::fflush(stdout);
  stop.Wait();
  auto final_status = manager.Revert(req.fault_id(), "request");
  std::string out;
  if (final_status.ok() && *final_status) {
    (void)google::protobuf::util::MessageToJsonString(**final_status, &out);
  }
  std::printf("%s\n", out.c_str());
  std::fflush(stdout);
  if (!final_status.ok()) {
    std::fprintf(stderr, "revert: %s\n", final_status.status().ToString().c_str());
  }
  return final_status.ok() ? 0 : 1;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int BenchMode(int runs, const std::string& netns_path) {
  struct stat st {};
  if (::stat(netns_path.c_str(), &st) != 0) {
    std::fprintf(stderr, "stat %s failed\n", netns_path.c_str());
    return 2;
  }
  char dir[] = "/tmp/fl-netns-bench.XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  std::vector<std::unique_ptr<BackendModule>> modules;
  FaultRegistry registry;
  RegisterAll(registry, dir, modules);
  auto journal = Journal::Open(std::string(dir) + "/journal");
  if (!journal.ok()) return 1;
  SystemClock clock;
  FaultManager manager(registry, **journal, clock, {});
  std::vector<double> host_ms, netns_ms;
  auto once = [&](const std::string& id, bool in_netns) -> Result<double> {
    v1::ApplyFaultRequest req;
    req.set_run_id("netnsbench");
    req.set_fault_id(id);
    req.set_lease_ttl_ms(60'000);
    auto* dns = req.mutable_spec()->mutable_dns();
    dns->add_domains("bench.netns.test");
    dns->set_mode(v1::DnsFault::NXDOMAIN);
    if (in_netns) {
      auto* w = req.mutable_resolved_workload();
      w->set_kind("netns");
      w->set_id(netns_path);
      w->set_netns_path(netns_path);
      w->set_netns_dev(st.st_dev);
      w->set_netns_ino(st.st_ino);
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto applied = manager.Apply(req);
    if (!applied.ok()) return applied.status();
    auto reverted = manager.Revert(id, "request");
    if (!reverted.ok()) return reverted.status();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  for (int i = 0; i < runs; ++i) {
    for (bool in_netns : {false, true}) {
      auto ms = once((in_netns ? "n" : "h") + std::to_string(i), in_netns);
      if (!ms.ok()) {
        std::fprintf(stderr, "run %d (%s): %s\n", i, in_netns ? "netns" : "host",
                     ms.status().ToString().c_str());
        (void)manager.Shutdown();
        return 1;
      }
      (in_netns ? netns_ms : host_ms).push_back(*ms);
      std::printf("%s %.3f\n", in_netns ? "netns_ms" : "host_ms", *ms);
    }
  }
  (void)manager.Shutdown();
  std::filesystem::remove_all(dir);
  const double h = Median(host_ms), n = Median(netns_ms);
  std::printf(
      "dns apply+revert, median of %d: host %.3f ms, netns %.3f ms, ratio netns/host %.2f\n", runs,
      h, n, n / h);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "apply" && argc == 4) return ApplyMode(argv[2], argv[3]);
  if (mode == "bench" && argc == 4) return BenchMode(std::atoi(argv[2]), argv[3]);
  std::fprintf(stderr,
               "usage: %s apply STATE_DIR REQUEST_JSON\n"
               "       %s bench RUNS NETNS_PATH\n",
               argv[0], argv[0]);
  return 2;
}
