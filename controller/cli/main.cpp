// faultline: the operator CLI. Verbs: validate, run, report, history, annotate, schedule, agents,
// sandbox, certs, faults, halt, resume.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/atomic_file.h"
#include "common/certificates.h"
#include "common/duration.h"
#include "common/faultspec/workload_selector.h"
#include "common/logging.h"
#include "common/signals.h"
#include "controller/cli/annotate_command.h"
#include "controller/cli/certs_command.h"
#include "controller/cli/controller_commands.h"
#include "controller/cli/history_command.h"
#include "controller/cli/report_command.h"
#include "controller/cli/sandbox_command.h"
#include "controller/cli/schedule_command.h"
#include "controller/engine/agent_client.h"
#include "controller/engine/inventory.h"
#include "controller/engine/run_engine.h"
#include "controller/experiment/parser.h"
#include "controller/metrics/run_metrics.h"
#include "controller/probes/probe_runner.h"
#include "controller/report/live_progress.h"
#include "controller/report/repeat_report.h"
#include "controller/report/report.h"
#include "controller/sandbox/sandbox.h"

namespace faultline::cli {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitInfra = 4;

// A duration flag ("15s") checked by ParseDuration.
CLI::Validator DurationValidator() {
  return CLI::Validator(
      [](std::string& s) -> std::string {
        auto d = ParseDuration(s);
        if (!d.ok()) return d.status().message();
        if (d->count() <= 0) return "must be greater than 0";
        return "";
      },
      "DURATION");
}

// --inventory, or the sandbox's own when the sandbox is up.
Result<engine::Inventory> LoadInventoryOrSandbox(const std::string& path) {
  if (!path.empty()) return engine::LoadInventory(path);
  if (sandbox::SandboxIsUp()) return engine::LoadInventory(sandbox::SandboxInventoryPath());
  return FailedPrecondition(
      "no --inventory given and the sandbox is not up (start it with `faultline sandbox up`, or "
      "pass --inventory FILE listing your agents)");
}

// The agents to talk to and the credentials to reach them. Returns 0, or the exit code after
// printing why not (2 for bad input, 4 when the agents cannot be known).
int LoadFleet(const std::string& inventory_path, const ClientTlsArgs& tls,
              engine::Inventory* inventory, std::shared_ptr<grpc::ChannelCredentials>* creds) {
  auto inv = LoadInventoryOrSandbox(inventory_path);
  if (!inv.ok()) {
    std::cerr << "faultline: " << inv.status().message() << "\n";
    return inv.status().code() == StatusCode::kInvalidArgument ? kExitUsage : kExitInfra;
  }
  auto credentials = ResolveClientCredentials(tls, Role::kAgent);
  if (!credentials.ok()) {
    std::cerr << "faultline: " << credentials.status().message() << "\n";
    return kExitUsage;
  }
  *inventory = std::move(*inv);
  *creds = std::move(*credentials);
  return 0;
}

// validate FILE...
struct ValidateArgs {
  std::vector<std::string> files;
  std::string output = "text";
};

int Validate(const ValidateArgs& a) {
  int rc = 0;
  nlohmann::json results = nlohmann::json::array();
  for (const auto& f : a.files) {
    auto outcome = experiment::ParseExperimentFile(f);
    nlohmann::json entry{{"file", f}, {"valid", outcome.ok()}};
    for (const auto& d : outcome.errors) {
      entry["errors"].push_back(d.ToString());
      if (a.output == "text") std::cerr << "error: " << d.ToString() << "\n";
    }
    for (const auto& d : outcome.warnings) {
      entry["warnings"].push_back(d.ToString());
      if (a.output == "text") std::cerr << "warning: " << d.ToString() << "\n";
    }
    if (outcome.ok()) {
      if (a.output == "text") {
        std::cout << f << ": valid (" << outcome.experiment->name << ", "
                  << outcome.experiment->faults.size() << " fault(s), "
                  << outcome.experiment->objectives.size() << " objective(s))\n";
      }
    } else {
      rc = kExitUsage;
    }
    results.push_back(entry);
  }
  if (a.output == "json") std::cout << results.dump(2) << "\n";
  return rc;
}

// run FILE
struct RunArgs {
  std::string file;
  std::string controller;
  std::string inventory;
  std::string lease_ttl = "15s";
  ReportFiles reports;
  std::string metrics_file;
  std::string output = "text";
  bool quiet = false;
  ClientTlsArgs tls;
  std::string history;
  int repeat = 0;  // 0: not given (one run, the ordinary report)
  std::string repeat_pause = "10s";
  std::string baseline;  // run id (or prefix) or "last-pass"
  std::string tolerance = "0s";
};

// What a Ctrl-C must reach: the engine running now (cancelled: faults reverted, verdict
// ABORTED), and the repeat loop (no further run starts; the pause between runs ends at once).
struct StopState {
  std::mutex mu;
  std::condition_variable cv;
  engine::RunEngine* current = nullptr;
  bool stop = false;
  std::string why;  // the cancel reason, once stop is set
};

// One full run of `exp` with live progress. A stop asked before it started cancels it at once
// (the engine then reports it ABORTED, as it did when the signal came just before Run).
engine::RunResult RunOnce(const experiment::Experiment& exp, const engine::Inventory& inventory,
                          engine::RunOptions opts, bool quiet, StopState& st) {
  MonoTime origin = SystemClock::Instance().Now();
  // Live progress on stderr (stdout carries only the report): a redrawn status block on a
  // terminal, plain lines elsewhere; nothing with --quiet.
  bool tty = isatty(STDERR_FILENO);
  std::unique_ptr<report::LiveProgress> live;
  if (!quiet) {
    live = std::make_unique<report::LiveProgress>(exp, origin, stderr, tty);
    opts.on_progress = [p = live.get()](const engine::ProgressEvent& e) { p->OnEvent(e); };
    opts.on_sample = [p = live.get()](const std::string& probe, const engine::ProbeSample& s) {
      p->OnSample(probe, s);
    };
  }
  engine::RunEngine engine(exp, inventory, opts);
  {
    std::lock_guard lock(st.mu);
    if (st.stop) engine.Cancel(st.why);
    st.current = &engine;
  }
  // On a terminal the status block is redrawn a few times a second between events.
  std::atomic<bool> done{false};
  std::mutex redraw_mu;
  std::condition_variable redraw_cv;
  std::thread redraw;
  if (live && tty) {
    redraw = std::thread([&] {
      std::unique_lock lock(redraw_mu);
      auto finished = [&] { return done.load(); };
      while (!redraw_cv.wait_for(lock, std::chrono::milliseconds(250), finished)) {
        live->Redraw(SystemClock::Instance().Now());
      }
    });
  }
  auto result = engine.Run();
  {
    std::lock_guard lock(st.mu);
    st.current = nullptr;
  }
  {
    std::lock_guard lock(redraw_mu);
    done = true;
  }
  redraw_cv.notify_all();
  if (redraw.joinable()) redraw.join();
  if (live) live->Finish();
  return result;
}

// `run --repeat N` / `--baseline`: N full runs (each recorded in the history under its own run
// id), a pause between them, then the distribution and the baseline comparison
// (report/repeat_report.h). Exit code: report::RepeatExitCode.
int RunRepeat(const RunArgs& a, const experiment::Experiment& exp,
              const engine::Inventory& inventory, const engine::RunOptions& opts, StopState& st) {
  auto tolerance = report::ParseTolerance(a.tolerance);
  if (!tolerance.ok()) {
    std::cerr << "faultline: " << tolerance.status().message() << "\n";
    return kExitUsage;
  }
  // The baseline is chosen before the first run, so this invocation's runs never become it.
  std::optional<report::ReportModel> baseline;
  if (!a.baseline.empty()) {
    auto b = LoadBaseline(a.history, a.baseline, exp.name);
    if (!b.ok()) {
      std::cerr << "faultline: --baseline " << a.baseline << ": " << b.status().message() << "\n";
      return ExitCodeForStoreError(b.status());
    }
    baseline = std::move(*b);
    if (!a.quiet) {
      std::fprintf(stderr, "faultline: baseline is run %s (%s)\n", baseline->run_id.c_str(),
                   baseline->verdict.c_str());
    }
  }
  int n = std::max(1, a.repeat);
  Duration pause = *ParseDuration(a.repeat_pause);
  std::vector<report::ReportModel> runs;
  bool stopped = false;
  for (int i = 0; i < n; ++i) {
    if (i > 0) {
      std::unique_lock lock(st.mu);
      if (st.cv.wait_for(lock, pause, [&] { return st.stop; })) {
        stopped = true;
        break;
      }
    }
    if (!a.quiet) {
      std::fprintf(stderr, "faultline: run %d of %d of %s from %s\n", i + 1, n, exp.name.c_str(),
                   a.file.c_str());
    }
    auto result = RunOnce(exp, inventory, opts, a.quiet, st);
    auto model = report::FromRun(result);
    std::cerr << report::RenderVerdictLine(model);
    RecordRunInHistory(a.history, a.file, result);
    runs.push_back(std::move(model));
    std::lock_guard lock(st.mu);
    if (st.stop) {
      stopped = i + 1 < n;
      break;
    }
  }
  std::optional<report::BaselineComparison> comparison;
  if (baseline && !runs.empty()) {
    comparison = report::CompareWithBaseline(*baseline, runs, *tolerance);
  }
  auto summary = report::SummarizeRepeat(exp.name, n, std::chrono::duration<double>(pause).count(),
                                         stopped, std::move(runs), std::move(comparison));
  std::cout << (a.output == "json" ? report::RenderRepeatJson(summary)
                                   : report::RenderRepeatText(summary));
  std::cout.flush();
  if (!a.reports.json.empty()) {
    Status s = report::WriteReportFile(a.reports.json, report::RenderRepeatJson(summary));
    if (!s.ok()) std::cerr << "faultline: --report-json: " << s.message() << "\n";
  }
  return summary.exit_code;
}

int Run(const RunArgs& a) {
  // Block the termination signals before any thread exists (gRPC, probes), so every thread
  // inherits the mask and the signal thread below receives them synchronously (sigwait).
  const BlockedSignals blocked({SIGINT, SIGTERM});
  bool repeat_mode = a.repeat > 0 || !a.baseline.empty();
  if (repeat_mode &&
      (!a.reports.junit.empty() || !a.reports.html.empty() || !a.metrics_file.empty())) {
    std::cerr << "faultline: --repeat/--baseline write one summary (--report-json); each run's "
                 "own reports are in the history (`faultline report RUN --format html|junit`)\n";
    return kExitUsage;
  }
  auto outcome = experiment::ParseExperimentFile(a.file);
  for (const auto& d : outcome.warnings) std::cerr << "warning: " << d.ToString() << "\n";
  if (!outcome.ok()) {
    for (const auto& d : outcome.errors) std::cerr << "error: " << d.ToString() << "\n";
    std::cerr << "faultline: " << a.file << " is invalid; nothing was applied\n";
    return kExitUsage;
  }
  engine::Inventory inventory;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (int rc = LoadFleet(a.inventory, a.tls, &inventory, &credentials); rc != 0) return rc;

  engine::RunOptions opts;
  opts.lease_ttl = *ParseDuration(a.lease_ttl);
  opts.agent_credentials = credentials;
  probes::InitProbes();

  // SIGINT/SIGTERM were blocked in main before any thread started; this thread turns them into a
  // cancel of the current run (revert everything, verdict ABORTED) and stops a repeat. A second
  // signal exits at once: the agents' leases revert whatever is left.
  StopState st;
  int seen = 0;  // only the signal thread touches it
  auto signals = std::make_unique<SignalThread>(blocked, [&](int sig) {
    if (++seen == 1) {
      std::fprintf(stderr,
                   "\nfaultline: %s received: reverting every fault (again to exit at once; "
                   "agents then revert on lease expiry)\n",
                   sig == SIGINT ? "interrupt" : "terminate");
      std::lock_guard lock(st.mu);
      st.stop = true;
      st.why = sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)";
      if (st.current != nullptr) st.current->Cancel(st.why);
      st.cv.notify_all();
    } else {
      _exit(3);
    }
  });

  if (repeat_mode) {
    int rc = RunRepeat(a, *outcome.experiment, inventory, opts, st);
    signals.reset();  // later signals stay blocked and pending
    return rc;
  }
  if (!a.quiet) {
    std::fprintf(stderr, "faultline: running %s from %s\n", outcome.experiment->name.c_str(),
                 a.file.c_str());
  }
  auto result = RunOnce(*outcome.experiment, inventory, opts, a.quiet, st);
  signals.reset();  // later signals stay blocked and pending

  auto model = report::FromRun(result);
  if (a.output == "json") {
    std::cout << report::RenderJson(model);
  } else if (a.quiet) {
    std::cout << report::RenderVerdictLine(model);
  } else {
    std::cout << report::RenderText(model);
  }
  std::cout.flush();
  WriteReportFiles(model, a.reports);
  RecordRunInHistory(a.history, a.file, result);
  if (!a.metrics_file.empty()) {
    metrics::Registry registry;
    Status s = run_metrics::DeclareRunMetrics(registry);
    if (s.ok()) s = run_metrics::RecordRun(registry, result);
    if (s.ok()) s = WriteFileAtomically(a.metrics_file, registry.Render(), 0644);
    if (!s.ok()) std::cerr << "faultline: --metrics-file: " << s.message() << "\n";
  }
  return engine::ExitCodeFor(result.verdict);
}

// agents
struct AgentsArgs {
  std::string inventory;
  std::string controller;
  std::string output = "text";
  ClientTlsArgs tls;
};

int Agents(const AgentsArgs& a) {
  engine::Inventory inventory;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (int rc = LoadFleet(a.inventory, a.tls, &inventory, &credentials); rc != 0) return rc;
  int rc = 0;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& ep : inventory.agents) {
    engine::AgentClient client(ep, credentials);
    auto info = client.GetInfo(std::chrono::seconds(3));
    nlohmann::json j{{"name", ep.name}, {"address", ep.address}, {"reachable", info.ok()}};
    if (!info.ok()) {
      rc = kExitInfra;
      j["error"] = info.status().message();
      if (a.output == "text") {
        std::cout << ep.name << "  " << ep.address << "  UNREACHABLE: " << info.status().message()
                  << "\n";
      }
    } else {
      std::map<std::string, std::string> labels(info->labels().begin(), info->labels().end());
      std::vector<std::string> caps(info->capabilities().begin(), info->capabilities().end());
      j["agent_id"] = info->agent_id();
      j["version"] = info->version();
      j["labels"] = labels;
      j["capabilities"] = caps;
      j["active_faults"] = info->active_faults();
      std::map<std::string, std::string> missing(info->missing_capabilities().begin(),
                                                 info->missing_capabilities().end());
      j["missing_capabilities"] = missing;
      j["runtimes"] =
          std::map<std::string, std::string>(info->runtimes().begin(), info->runtimes().end());
      if (a.output == "text") {
        std::string l, c;
        for (const auto& [k, v] : labels) l += (l.empty() ? "" : ",") + k + "=" + v;
        for (const auto& x : caps) c += (c.empty() ? "" : ",") + x;
        std::cout << info->agent_id() << "  " << ep.address << "  v" << info->version()
                  << "  labels{" << l << "}  capabilities[" << c << "]  active_faults "
                  << info->active_faults() << "\n";
      }
    }
    out.push_back(j);
  }
  if (a.output == "json") std::cout << out.dump(2) << "\n";
  return rc;
}

// workloads
struct WorkloadsArgs {
  std::string inventory;
  std::vector<std::string> agent_labels;  // key=value: which agents to ask (default: all)
  std::string runtime = "any";
  std::vector<std::string> labels;  // key=value
  std::vector<std::string> names;
  std::string pod_namespace;
  std::string netns;
  std::string cgroup;
  uint32_t pid = 0;
  std::string output = "text";
  ClientTlsArgs tls;
};

// Splits "k=v" pairs into `out`; false (after printing why) on a pair without '='.
bool SplitPairs(const std::vector<std::string>& pairs, const char* flag,
                std::map<std::string, std::string>* out) {
  for (const std::string& p : pairs) {
    size_t eq = p.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "faultline: " << flag << " " << p << ": expected key=value\n";
      return false;
    }
    (*out)[p.substr(0, eq)] = p.substr(eq + 1);
  }
  return true;
}

// Lists what a target's `workloads:` would match on each agent: the same ListWorkloads the run
// engine calls. Exit 0 (also when nothing matches), 2 for a bad selector, 4 when an agent fails.
int Workloads(const WorkloadsArgs& a) {
  v1::WorkloadSelector sel;
  std::map<std::string, std::string> labels, agent_selector;
  if (!SplitPairs(a.labels, "--label", &labels) ||
      !SplitPairs(a.agent_labels, "--selector", &agent_selector)) {
    return kExitUsage;
  }
  const bool handle = !a.netns.empty() || !a.cgroup.empty() || a.pid != 0;
  if (!handle) {
    sel.set_runtime(a.runtime == "docker" ? v1::WorkloadSelector::DOCKER
                    : a.runtime == "cri"  ? v1::WorkloadSelector::CRI
                                          : v1::WorkloadSelector::ANY);
  }
  for (const auto& [k, v] : labels) (*sel.mutable_labels())[k] = v;
  for (const auto& n : a.names) sel.add_names(n);
  sel.set_pod_namespace(a.pod_namespace);
  sel.set_netns_path(a.netns);
  sel.set_cgroup_path(a.cgroup);
  sel.set_pid(a.pid);
  if (Status st = faultspec::ValidateWorkloadSelector(sel); !st.ok()) {
    std::cerr << "faultline: " << st.message() << "\n";
    return kExitUsage;
  }
  engine::Inventory inventory;
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (int rc = LoadFleet(a.inventory, a.tls, &inventory, &credentials); rc != 0) return rc;
  int rc = 0;
  nlohmann::json out = nlohmann::json::array();
  for (const auto& ep : inventory.agents) {
    if (!engine::MatchesSelector(ep, agent_selector)) continue;
    engine::AgentClient client(ep, credentials);
    auto got = client.ListWorkloads(sel, std::chrono::seconds(10));
    if (!got.ok()) {
      rc = kExitInfra;
      std::cerr << "faultline: agent " << ep.name << ": " << got.status().message() << "\n";
      continue;
    }
    for (const auto& [runtime, why] : got->runtime_errors()) {
      std::cerr << "faultline: agent " << ep.name << ": runtime " << runtime << ": " << why << "\n";
    }
    for (const v1::Workload& w : got->workloads()) {
      nlohmann::json j{
          {"agent", ep.name},
          {"kind", w.kind()},
          {"runtime", w.runtime()},
          {"id", w.id()},
          {"name", w.name()},
          {"namespace", w.pod_namespace()},
          {"labels", std::map<std::string, std::string>(w.labels().begin(), w.labels().end())},
          {"pids", std::vector<uint32_t>(w.pids().begin(), w.pids().end())},
          {"netns_path", w.netns_path()},
          {"netns_dev", w.netns_dev()},
          {"netns_ino", w.netns_ino()},
          {"cgroup_path", w.cgroup_path()}};
      out.push_back(j);
      if (a.output == "text") {
        std::cout << engine::DescribeWorkload({ep.name, w}) << "  pid "
                  << (w.pids_size() > 0 ? std::to_string(w.pids(0)) : "-") << "  netns "
                  << w.netns_path() << " (" << w.netns_dev() << ":" << w.netns_ino() << ")\n";
      }
    }
  }
  if (a.output == "json") std::cout << out.dump(2) << "\n";
  return rc;
}

}  // namespace
}  // namespace faultline::cli

int main(int argc, char** argv) {
  using namespace faultline::cli;
  faultline::SetupLogging("warn", "faultline");

  CLI::App app{
      "faultline: chaos experiments with measured time-to-detect and time-to-recover.\n"
      "Exit codes of `run`: 0 every objective met, 1 an objective missed, 2 invalid input or "
      "usage, 3 aborted (faults reverted), 4 infrastructure error, 5 (--baseline only) every "
      "objective met but recovery regressed against the baseline."};
  app.require_subcommand(1);
  int exit_code = 0;

  ValidateArgs va;
  auto* validate = app.add_subcommand("validate",
                                      "Check experiment files; report every error "
                                      "as file:line:column: field: message");
  validate->add_option("files", va.files, "Experiment files")->required()->check(CLI::ExistingFile);
  validate->add_option("--output", va.output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  validate->callback([&] { exit_code = Validate(va); });

  RunArgs ra;
  auto* run = app.add_subcommand(
      "run", "Run an experiment directly against its agents and print the measured report");
  run->add_option("file", ra.file, "Experiment file")->required()->check(CLI::ExistingFile);
  run->add_option("--inventory", ra.inventory,
                  "Inventory YAML of agents (default: the sandbox's, when it is up)")
      ->check(CLI::ExistingFile);
  run->add_option("--lease-ttl", ra.lease_ttl,
                  "Agents revert a fault on their own if its lease is not renewed within this "
                  "(default 15s)")
      ->check(DurationValidator());
  AddReportFileFlags(run, &ra.reports);
  run->add_option("--metrics-file", ra.metrics_file,
                  "Also write the run's Prometheus metrics (verdict, time to detect/recover, "
                  "probe results) to this file, for node_exporter's textfile collector");
  run->add_option("--output", ra.output,
                  "Report on stdout: text, or json (then stdout carries the JSON report and "
                  "nothing else)")
      ->check(CLI::IsMember({"text", "json"}));
  run->add_flag("--quiet,-q", ra.quiet,
                "No live progress; stdout gets only the verdict line (with --output json, only "
                "the JSON report)");
  AddClientTlsFlags(run, &ra.tls);
  AddHistoryFlag(run, &ra.history);
  run->add_option("--repeat", ra.repeat,
                  "Run the experiment N times (1-100), each a full run with its own run id in the "
                  "history, and report the distribution of time to detect and recover per "
                  "objective (median, p95, min, max) and each run's verdict. Exit code: 3 if any "
                  "run aborted, else 4 if any errored, else 1 if any failed, else 5 if "
                  "--baseline regressed, else 0")
      ->check(CLI::Range(1, 100));
  run->add_option("--repeat-pause", ra.repeat_pause, "Pause between repeated runs (default 10s)")
      ->check(DurationValidator());
  run->add_option("--baseline", ra.baseline,
                  "Compare time to recover with a stored run of the same experiment: RUN (id or "
                  "unique prefix) or last-pass (the newest PASS run in the history). Regressed "
                  "(exit 5) when the median of this invocation's recovery lower bounds exceeds "
                  "the baseline's upper bound plus --tolerance");
  run->add_option("--tolerance", ra.tolerance,
                  "Allowed slowdown against --baseline: a duration (500ms) or a percentage of "
                  "the baseline's recovery upper bound (20%); default 0s")
      ->check(CLI::Validator(
          [](std::string& t) -> std::string {
            auto parsed = faultline::report::ParseTolerance(t);
            return parsed.ok() ? "" : parsed.status().message();
          },
          "TOLERANCE"));
  run->add_option("--controller", ra.controller,
                  "Submit to this faultline-controller (HOST:PORT) instead of running directly")
      ->excludes("--inventory");
  run->callback([&] {
    if (!ra.controller.empty() && (ra.repeat > 0 || !ra.baseline.empty())) {
      std::cerr << "faultline: --repeat and --baseline run directly (not with --controller)\n";
      exit_code = kExitUsage;
      return;
    }
    exit_code = ra.controller.empty()
                    ? Run(ra)
                    : RunViaController(ra.controller, ra.file, ra.lease_ttl, ra.output,
                                       ra.reports.json, ra.quiet, ra.tls);
  });

  AgentsArgs aa;
  auto* agents = app.add_subcommand("agents",
                                    "Show what each agent reports (labels, "
                                    "capabilities, active faults)");
  agents->add_option("--inventory", aa.inventory, "Inventory YAML (default: the sandbox's)")
      ->check(CLI::ExistingFile);
  agents->add_option("--output", aa.output, "text or json")->check(CLI::IsMember({"text", "json"}));
  AddClientTlsFlags(agents, &aa.tls);
  agents
      ->add_option("--controller", aa.controller,
                   "Ask this faultline-controller (HOST:PORT) which agents are attached")
      ->excludes("--inventory");
  agents->callback([&] {
    exit_code =
        aa.controller.empty() ? Agents(aa) : AgentsViaController(aa.controller, aa.output, aa.tls);
  });

  WorkloadsArgs wa;
  auto* workloads = app.add_subcommand(
      "workloads", "List the containers, pods or handles a target's `workloads:` would match");
  workloads->add_option("--inventory", wa.inventory, "Inventory YAML (default: the sandbox's)")
      ->check(CLI::ExistingFile);
  workloads->add_option("--selector", wa.agent_labels, "agent label key=value (default: all)");
  workloads->add_option("--runtime", wa.runtime, "docker, cri or any")
      ->check(CLI::IsMember({"docker", "cri", "any"}));
  workloads->add_option("--label", wa.labels, "container/pod label key=value, repeatable");
  workloads->add_option("--name", wa.names, "container or pod name, repeatable");
  workloads->add_option("--namespace", wa.pod_namespace, "Kubernetes namespace (cri)");
  workloads->add_option("--netns", wa.netns, "a network namespace path (handle)");
  workloads->add_option("--cgroup", wa.cgroup, "a cgroup v2 directory (handle)");
  workloads->add_option("--pid", wa.pid, "a process id (handle)");
  workloads->add_option("--output", wa.output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  AddClientTlsFlags(workloads, &wa.tls);
  workloads->callback([&] { exit_code = Workloads(wa); });

  AddReportCommand(app, &exit_code);
  AddSandboxCommand(app, &exit_code);
  AddCertsCommand(app, &exit_code);
  AddHistoryCommand(app, &exit_code);
  AddAnnotateCommand(app, &exit_code);
  AddScheduleCommand(app, &exit_code);
  AddControllerCommands(app, &exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  return exit_code;
}
