// Fan-out benchmark of the controller daemon (issue 7). Starts the real ControllerService on
// loopback and N real `faultline-agent --dry-run` processes (each with its own gRPC server on
// 127.0.0.1:20000+i and an outbound Attach stream to the controller), then measures:
//   - apply: one ApplyFault command to every agent at once (the registry's async fan-out, one
//     in-flight command per agent, per-agent deadline); time from the first send to each ack and
//     to the last ack, per round;
//   - halt: ControllerService::HaltAll (what `faultline halt` runs), time until the last agent
//     confirmed its revert-all;
//   - the agents' idle footprint: RSS (VmRSS) and CPU over an idle window (utime+stime deltas).
// Figures are printed (a table, and JSON with --json FILE); nothing is asserted.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/proc_stats.h"
#include "bench/spawn.h"
#include "common/logging.h"
#include "controller/daemon/agent_registry.h"
#include "controller/daemon/controller_service.h"

extern char** environ;

namespace {

using namespace faultline;
using bench::CpuTicks;
using bench::LoadAverage;
using bench::Percentile;
using bench::ProcKib;
using Steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

double Ms(Steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Agents started so far, for KillAll on every exit path (normal end, a signal, an error).
std::mutex g_agents_mu;
std::vector<pid_t> g_agents;
std::string g_pid_file;  // one pid per line, for bench/fanout_bench.sh's trap
int g_agent_nice = 10;

// In batches: a thousand agents shutting down at once drove the load average past 800.
void KillAll() {
  constexpr size_t kBatch = 50;
  std::lock_guard lock(g_agents_mu);
  for (size_t first = 0; first < g_agents.size(); first += kBatch) {
    size_t last = std::min(g_agents.size(), first + kBatch);
    for (size_t i = first; i < last; ++i) kill(g_agents[i], SIGTERM);
    for (size_t i = first; i < last; ++i) waitpid(g_agents[i], nullptr, 0);
  }
  g_agents.clear();
  if (!g_pid_file.empty()) std::ofstream(g_pid_file, std::ios::trunc);
}

// A tied child (bench/spawn.h): no agent outlives the benchmark, even after a crash or kill -9.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  // On a real fleet each agent has a host of its own; here a thousand share two cores with the
  // controller, which must not be starved by them (it would drop them for missed heartbeats).
  const pid_t pid = faultline::bench::SpawnTied(argv, {log, false, g_agent_nice}).pid;
  if (pid > 0) {
    std::lock_guard lock(g_agents_mu);
    g_agents.push_back(pid);
    if (!g_pid_file.empty()) std::ofstream(g_pid_file, std::ios::app) << pid << "\n";
  }
  return pid;
}

struct Figures {
  int agents = 0;
  double attach_s = 0;
  std::vector<double> apply_last_ms, apply_each_ms, halt_ms;
  int apply_failures = 0, halt_failures = 0;
  std::vector<double> rss_mib, pss_mib, cpu_percent;
  double cpu_mean_percent = 0;
};

Figures RunOne(int n, int rounds, const std::string& agent_bin, int port, int agent_port_base,
               double idle_s, const std::string& dir, int spawn_batch, Duration attach_deadline,
               Duration heartbeat) {
  Figures fig;
  fig.agents = n;
  daemon::AgentRegistryOptions ro;
  ro.heartbeat_interval = heartbeat;
  daemon::AgentRegistry registry(ro);
  daemon::ControllerServiceOptions so;
  so.plaintext_allow_all = true;
  so.fanout_deadline = 10s;
  auto service = std::make_unique<daemon::ControllerService>(registry, so);
  grpc::ServerBuilder builder;
  int selected = 0;
  const std::string address = "127.0.0.1:" + std::to_string(port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &selected);
  builder.RegisterService(service.get());
  auto server = builder.BuildAndStart();
  if (!server || selected == 0) {
    std::fprintf(stderr, "fanout_bench: cannot listen on %s\n", address.c_str());
    std::exit(1);
  }

  // Started in batches, each waited for (attached, or its deadline) before the next: a machine
  // of a few cores cannot start a thousand gRPC processes at once (each start costs ~70 ms of
  // CPU, mostly dynamic linking and page faults), and agents starved of CPU miss their
  // heartbeats and are dropped.
  std::vector<pid_t> pids;
  auto t0 = Steady::now();
  bool all = true;
  for (int first = 0; first < n && all; first += spawn_batch) {
    int last = std::min(n, first + spawn_batch);
    for (int i = first; i < last; ++i) {
      std::string state = dir + "/agent-" + std::to_string(i);
      std::filesystem::create_directories(state);
      pid_t pid = Spawn({agent_bin, "--controller", address, "--insecure", "--dry-run", "--listen",
                         "127.0.0.1:" + std::to_string(agent_port_base + i), "--name",
                         "bench-" + std::to_string(i), "--label", "bench=fanout", "--state-dir",
                         state, "--log-level", "warn"},
                        state + "/agent.log");
      if (pid < 0) {
        std::fprintf(stderr, "fanout_bench: cannot start agent %d: %s\n", i, strerror(errno));
        all = false;
        break;
      }
      pids.push_back(pid);
    }
    all = all && registry.AwaitLiveCount(static_cast<size_t>(last), attach_deadline);
  }
  fig.attach_s = std::chrono::duration<double>(Steady::now() - t0).count();
  if (!all) {
    std::fprintf(stderr, "fanout_bench: only %zu of %d agents attached\n", registry.LiveCount(), n);
  }
  std::vector<std::string> ids;
  for (const auto& a : registry.List(false)) ids.push_back(a.info.agent_id());

  // Idle footprint: let start-up settle, then measure CPU over the idle window.
  std::this_thread::sleep_for(2s);
  std::vector<long> before;
  for (pid_t p : pids) before.push_back(CpuTicks(p));
  auto idle_start = Steady::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(idle_s));
  double window = std::chrono::duration<double>(Steady::now() - idle_start).count();
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  long total_ticks = 0;
  for (size_t i = 0; i < pids.size(); ++i) {
    long after = CpuTicks(pids[i]);
    total_ticks += after - before[i];
    fig.cpu_percent.push_back(100.0 * (after - before[i]) / hz / window);
    fig.rss_mib.push_back(ProcKib(pids[i], "status", "VmRSS:") / 1024.0);
    // Proportional set size: shared library pages divided among the processes sharing them.
    fig.pss_mib.push_back(ProcKib(pids[i], "smaps_rollup", "Pss:") / 1024.0);
  }
  // The mean over all agents resolves far below one tick per agent.
  if (!pids.empty()) fig.cpu_mean_percent = 100.0 * total_ticks / hz / window / pids.size();

  // Nothing to measure without agents (and no figure is better than a wrong one).
  for (int r = 0; r < rounds && !ids.empty(); ++r) {
    // Apply to every agent at once: one command per agent, acks timed as they arrive.
    std::mutex mu;
    std::condition_variable cv;
    size_t left = ids.size();
    std::vector<double> acks;
    int failures = 0;
    auto start = Steady::now();
    for (const std::string& id : ids) {
      v1::ControllerCommand c;
      auto* a = c.mutable_apply();
      a->set_run_id("bench" + std::to_string(r));
      a->set_fault_id("bench_" + std::to_string(r));
      a->set_lease_ttl_ms(60000);
      a->mutable_spec()->mutable_dns()->add_domains("db.bench.test");
      a->mutable_spec()->mutable_dns()->set_mode(v1::DnsFault::NODATA);
      registry.Send(id, std::move(c), 10s, [&](Result<v1::CommandResult> res) {
        double ms = Ms(Steady::now() - start);
        std::lock_guard lock(mu);
        if (!res.ok() || res->code() != 0) ++failures;
        acks.push_back(ms);
        if (--left == 0) cv.notify_all();
      });
    }
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return left == 0; });
    }
    fig.apply_last_ms.push_back(*std::max_element(acks.begin(), acks.end()));
    fig.apply_each_ms.insert(fig.apply_each_ms.end(), acks.begin(), acks.end());
    fig.apply_failures += failures;

    daemon::HaltOutcome halt = service->HaltAll("benchmark");
    fig.halt_ms.push_back(Ms(halt.elapsed));
    fig.halt_failures += static_cast<int>(halt.failed.size());
    if (halt.faults_reverted != ids.size()) {
      std::fprintf(stderr, "round %d: halt reverted %u faults, expected %zu\n", r,
                   halt.faults_reverted, ids.size());
    }
    service->ResumeAll();
  }

  KillAll();
  service.reset();
  server->Shutdown(std::chrono::system_clock::now() + 2s);
  return fig;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {10, 100, 1000};
  int rounds = 20;
  double idle_s = 10;
  bool smoke = false;
  std::string agent_bin;
  std::string json_out;
  int port = 15850;
  int agent_port_base = 20000;
  std::string dir = "/dev/shm/fo-fanout-bench";
  int spawn_batch = 50;
  double heartbeat_s = 1;  // faultline-controller's --heartbeat default
  double attach_deadline_s = 60;
  CLI::App app{"fanout_bench: controller fan-out to N real dry-run agent processes"};
  app.add_option("--agents", sizes, "agent counts to measure")->capture_default_str();
  app.add_option("--rounds", rounds, "apply+halt rounds per count")->capture_default_str();
  app.add_option("--idle", idle_s, "idle window for CPU, seconds")->capture_default_str();
  app.add_option("--agent-bin", agent_bin, "path of faultline-agent")->required();
  app.add_option("--port", port, "controller port on 127.0.0.1")->capture_default_str();
  app.add_option("--agent-port-base", agent_port_base, "agent i listens on base+i")
      ->capture_default_str();
  app.add_option("--state-dir", dir, "agents' journals (tmpfs keeps fsync out of the figures)")
      ->capture_default_str();
  app.add_option("--json", json_out, "also write the figures as JSON here");
  app.add_option("--spawn-batch", spawn_batch,
                 "agents started at once; the next batch waits until these attached")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--attach-deadline", attach_deadline_s,
                 "seconds each batch may take to attach before the count is given up")
      ->capture_default_str();
  app.add_option("--agent-nice", g_agent_nice,
                 "nice value of the agents (the controller keeps 0): one host's cores stand in "
                 "for a fleet's")
      ->capture_default_str();
  app.add_option("--heartbeat", heartbeat_s,
                 "seconds between the agents' heartbeats (the controller's --heartbeat)")
      ->capture_default_str();
  app.add_option("--pid-file", g_pid_file,
                 "keep the running agents' pids here (one a line) for a caller's cleanup");
  app.add_flag("--smoke", smoke, "N=10, 3 rounds, 1 s idle window (CTest)");
  CLI11_PARSE(app, argc, argv);
  if (smoke) {
    sizes = {10};
    rounds = 3;
    idle_s = 1;
  }
  SetupLogging("error", "fanout_bench");
  if (!g_pid_file.empty()) std::ofstream(g_pid_file, std::ios::trunc);
  // SIGINT/SIGTERM: stop every agent, then exit. Blocked here, before any thread exists, and
  // taken by one thread with sigwait (KillAll is not async-signal-safe).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::thread([stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::fprintf(stderr, "fanout_bench: %s: stopping every agent\n", strsignal(sig));
    KillAll();
    std::_Exit(128 + sig);
  }).detach();
  // Each agent holds a stream (one socket) to the controller.
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);

  nlohmann::json out = nlohmann::json::array();
  std::printf("heartbeat %.1f s, agents at nice %d, spawned %d at a time\n", heartbeat_s,
              g_agent_nice, spawn_batch);
  std::printf("%6s %9s | %-28s | %-22s | %-20s | %-20s | %s\n", "agents", "attach_s",
              "apply last ack ms (med/p99)", "apply each ack ms p50/p99", "halt ms (med/p99)",
              "agent RSS MiB med/max", "agent CPU % med/max");
  for (int n : sizes) {
    std::filesystem::remove_all(dir);
    Figures f = RunOne(
        n, rounds, agent_bin, port, agent_port_base, idle_s, dir, spawn_batch,
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(attach_deadline_s)),
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(heartbeat_s)));
    std::filesystem::remove_all(dir);
    std::printf(
        "%6d %9.1f | %12.1f / %-13.1f | %9.1f / %-10.1f | %8.1f / %-9.1f | %8.1f / %-9.1f | "
        "%.3f / %.3f, mean %.4f  (PSS med %.1f MiB; failures: apply %d, halt %d)\n",
        n, f.attach_s, Percentile(f.apply_last_ms, 50), Percentile(f.apply_last_ms, 99),
        Percentile(f.apply_each_ms, 50), Percentile(f.apply_each_ms, 99), Percentile(f.halt_ms, 50),
        Percentile(f.halt_ms, 99), Percentile(f.rss_mib, 50), Percentile(f.rss_mib, 100),
        Percentile(f.cpu_percent, 50), Percentile(f.cpu_percent, 100), f.cpu_mean_percent,
        Percentile(f.pss_mib, 50), f.apply_failures, f.halt_failures);
    std::fflush(stdout);
    out.push_back(
        {{"agents", n},
         {"rounds", rounds},
         {"attach_s", f.attach_s},
         {"apply_last_ack_ms",
          {{"median", Percentile(f.apply_last_ms, 50)}, {"p99", Percentile(f.apply_last_ms, 99)}}},
         {"apply_each_ack_ms",
          {{"median", Percentile(f.apply_each_ms, 50)}, {"p99", Percentile(f.apply_each_ms, 99)}}},
         {"halt_ms", {{"median", Percentile(f.halt_ms, 50)}, {"p99", Percentile(f.halt_ms, 99)}}},
         {"agent_rss_mib",
          {{"median", Percentile(f.rss_mib, 50)}, {"max", Percentile(f.rss_mib, 100)}}},
         {"agent_pss_mib",
          {{"median", Percentile(f.pss_mib, 50)}, {"max", Percentile(f.pss_mib, 100)}}},
         {"agent_cpu_percent",
          {{"median", Percentile(f.cpu_percent, 50)},
           {"max", Percentile(f.cpu_percent, 100)},
           {"mean", f.cpu_mean_percent}}},
         {"load_after", LoadAverage()},
         {"heartbeat_s", heartbeat_s},
         {"apply_failures", f.apply_failures},
         {"halt_failures", f.halt_failures}});
  }
  if (!json_out.empty()) std::ofstream(json_out) << out.dump(2) << "\n";
  return 0;
}
