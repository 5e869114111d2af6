// The process kind's agent module: its flags and its backend (agent/backend_module.h).
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "agent/backend_module.h"
#include "agent/process/process_backend.h"
#include "agent/workloads/workload.h"

namespace faultline::agent::process {
namespace {

class ProcessModule final : public BackendModule {
 public:
  void AddFlags(CLI::App& app) override {
    app.add_option("--protect-process", protect_processes_,
                   "a process name (comm or executable name) no process fault may touch, in "
                   "addition to init, faultline-agent/-controller, sshd, journald and the "
                   "container runtime; repeatable")
        ->type_name("NAME");
  }

  Result<std::unique_ptr<FaultBackend>> MakeBackend(const BackendEnvironment& env) override {
    ProcessBackendOptions options;
    options.record_dir = env.state_dir + "/process";
    options.protected_names = protect_processes_;
    options.guard_pauses = true;
    return std::unique_ptr<FaultBackend>(std::make_unique<ProcessBackend>(options));
  }

  // In a workload: only processes in its network namespace are eligible (never the host's or a
  // sibling's), with the same protected names.
  Result<NetnsBackend> MakeNetnsBackend(const BackendEnvironment& env,
                                        const workloads::Workload& workload) override {
    ProcessBackendOptions options;
    options.record_dir = env.state_dir + "/process";
    options.protected_names = protect_processes_;
    options.guard_pauses = true;
    SelectionScope scope;
    scope.self_pid = static_cast<int>(::getpid());
    scope.net_namespace = NamespaceId{workload.netns.dev, workload.netns.ino};
    options.scope = scope;
    return NetnsBackend{std::make_unique<ProcessBackend>(options), nullptr};
  }

 private:
  std::vector<std::string> protect_processes_;
};

}  // namespace

std::unique_ptr<BackendModule> MakeBackendModule() { return std::make_unique<ProcessModule>(); }

}  // namespace faultline::agent::process
