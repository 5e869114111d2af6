// The DNS kind's agent module: its flags and its backend (agent/backend_module.h).
#include <CLI/CLI.hpp>
#include <filesystem>

#include "agent/backend_module.h"
#include "agent/dns/dns_backend.h"
#include "agent/workloads/workload.h"

namespace faultline::agent::dns {
namespace {

// The resolv.conf a workload's programs read: /proc/<first pid>/root/etc/resolv.conf, else
// /etc/netns/<name>/resolv.conf for a /run/netns/<name> handle, else `fallback`.
std::string WorkloadResolvConf(const workloads::Workload& w, const std::string& fallback) {
  std::error_code ec;
  if (!w.pids.empty()) {
    std::string p = "/proc/" + std::to_string(w.pids.front()) + "/root/etc/resolv.conf";
    if (std::filesystem::exists(p, ec)) return p;
  }
  const std::string run_netns = "/run/netns/";
  if (w.netns_path.rfind(run_netns, 0) == 0) {
    std::string p = "/etc/netns/" + w.netns_path.substr(run_netns.size()) + "/resolv.conf";
    if (std::filesystem::exists(p, ec)) return p;
  }
  return fallback;
}

class DnsModule final : public BackendModule {
 public:
  void AddFlags(CLI::App& app) override {
    app.add_option("--dns-upstream", upstream_,
                   "HOST[:PORT] for pass-through DNS queries (default: first resolv.conf server)");
    app.add_option("--dns-intercept-port", intercept_port_,
                   "DNS interceptor port on 127.0.0.1 (0: pick a free one)")
        ->capture_default_str();
  }

  Result<std::unique_ptr<FaultBackend>> MakeBackend(const BackendEnvironment& env) override {
    DnsBackendOptions options;
    options.upstream = upstream_;
    options.intercept_port = intercept_port_;
    options.tables = env.tables;
    return std::unique_ptr<FaultBackend>(std::make_unique<DnsBackend>(options));
  }

  // In a workload: the interceptor's socket is made there on a port picked there (the host's port
  // may be a service's port in the workload), and pass-through queries default to the workload's
  // own resolv.conf.
  Result<NetnsBackend> MakeNetnsBackend(const BackendEnvironment& env,
                                        const workloads::Workload& workload) override {
    DnsBackendOptions options;
    options.upstream = upstream_;
    options.intercept_port = 0;
    options.tables = env.tables;
    options.resolv_conf_path = WorkloadResolvConf(workload, options.resolv_conf_path);
    return NetnsBackend{std::make_unique<DnsBackend>(options), nullptr};
  }

 private:
  std::string upstream_;
  uint16_t intercept_port_ = 0;
};

}  // namespace

std::unique_ptr<BackendModule> MakeBackendModule() { return std::make_unique<DnsModule>(); }

}  // namespace faultline::agent::dns
