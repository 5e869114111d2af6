// The dependency kind's agent module: its flags and its backend, the fault proxy
// (agent/backend_module.h).
#include <CLI/CLI.hpp>
#include <chrono>

#include "agent/backend_module.h"
#include "agent/proxy/proxy_backend.h"
#include "common/duration.h"

namespace faultline::agent::proxy {
namespace {

class ProxyModule final : public BackendModule {
 public:
  void AddFlags(CLI::App& app) override {
    app.add_option("--proxy-idle-timeout", idle_timeout_flag_,
                   "dependency faults: a proxied connection with no byte moving either way for "
                   "this long is closed (0s: never)")
        ->capture_default_str();
  }

  Status CheckFlags() override {
    // 0 turns the idle timeout off; ParseDuration caps at 7 days, which fits the int
    // milliseconds.
    Result<Duration> idle_timeout = ParseDuration(idle_timeout_flag_);
    if (!idle_timeout.ok() ||
        (idle_timeout->count() > 0 && *idle_timeout < std::chrono::milliseconds(1))) {
      return InvalidArgument("--proxy-idle-timeout '" + idle_timeout_flag_ + "': " +
                             (idle_timeout.ok() ? std::string("must be 0 or at least 1ms")
                                                : idle_timeout.status().message()));
    }
    idle_timeout_ms_ = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(*idle_timeout).count());
    return Status::Ok();
  }

  Result<std::unique_ptr<FaultBackend>> MakeBackend(const BackendEnvironment& env) override {
    ProxyBackendOptions options;
    options.tables = env.tables;
    options.idle_timeout_ms = idle_timeout_ms_;
    return std::unique_ptr<FaultBackend>(std::make_unique<ProxyBackend>(options));
  }

  // In a workload: the proxy's listener and its loop are made there, with its own tables.
  Result<NetnsBackend> MakeNetnsBackend(const BackendEnvironment& env,
                                        const workloads::Workload&) override {
    ProxyBackendOptions options;
    options.tables = env.tables;
    options.idle_timeout_ms = idle_timeout_ms_;
    return NetnsBackend{std::make_unique<ProxyBackend>(options), nullptr};
  }

 private:
  std::string idle_timeout_flag_ = "1h";
  int idle_timeout_ms_ = 0;
};

}  // namespace

std::unique_ptr<BackendModule> MakeBackendModule() { return std::make_unique<ProxyModule>(); }

}  // namespace faultline::agent::proxy
