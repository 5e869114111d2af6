// The DNS kind's agent module: its flags and its backend (agent/backend_module.h).
#include <CLI/CLI.hpp>

#include "agent/backend_module.h"
#include "agent/dns/dns_backend.h"

namespace faultline::agent::dns {
namespace {

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

 private:
  std::string upstream_;
  uint16_t intercept_port_ = 0;
};

}  // namespace

std::unique_ptr<BackendModule> MakeBackendModule() { return std::make_unique<DnsModule>(); }

}  // namespace faultline::agent::dns
