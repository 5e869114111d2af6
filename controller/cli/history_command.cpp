#include "controller/cli/history_command.h"

#include <spdlog/fmt/fmt.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "controller/cli/controller_commands.h"
#include "controller/report/report.h"
#include "controller/report/stored_report.h"
#include "controller/report/trend_report.h"

namespace faultline::cli {

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitInfra = 4;

std::string EffectiveUrl(const std::string& url) {
  return url.empty() ? store::DefaultHistoryUrl() : url;
}

struct HistoryArgs {
  std::string history;
  std::string controller;
  ClientTlsArgs tls;
  int limit = 20;
  std::string experiment;
  std::string output = "text";
  std::string trend;  // --trend EXPERIMENT
  std::string html;   // --html FILE (with --trend)
};

// history --trend EXPERIMENT: the newest --limit runs with a report, shown oldest first.
int Trend(const HistoryArgs& a) {
  auto history = OpenHistory(a.history);
  if (!history.ok()) {
    std::cerr << "faultline: " << history.status().message() << "\n";
    return ExitCodeForStoreError(history.status());
  }
  store::RunFilter filter;
  filter.limit = a.limit;
  filter.experiment = a.trend;
  filter.state = store::RunState::kFinished;
  filter.with_report = true;
  auto runs = (*history)->ListRuns(filter);
  if (!runs.ok()) {
    std::cerr << "faultline: " << runs.status().message() << "\n";
    return ExitCodeForStoreError(runs.status());
  }
  std::vector<report::ReportModel> models;
  for (auto it = runs->rbegin(); it != runs->rend(); ++it) {
    auto m = report::LoadStoredReport(store::StoredRun{*it, {}});
    if (!m.ok()) {
      std::cerr << "faultline: warning: run " << it->id << " skipped: " << m.status().message()
                << "\n";
      continue;
    }
    models.push_back(std::move(*m));
  }
  auto trend = report::BuildTrend(a.trend, models);
  if (!a.html.empty()) {
    if (Status s = report::WriteReportFile(a.html, report::RenderTrendHtml(trend)); !s.ok()) {
      std::cerr << "faultline: --html: " << s.message() << "\n";
      return kExitInfra;
    }
  }
  std::cout << (a.output == "json" ? report::RenderTrendJson(trend)
                                   : report::RenderTrendText(trend));
  return 0;
}

int History(const HistoryArgs& a) {
  if (!a.trend.empty()) {
    if (!a.controller.empty()) {
      std::cerr << "faultline: --trend reads the local history (--history URL), not a controller\n";
      return kExitUsage;
    }
    return Trend(a);
  }
  if (!a.html.empty()) {
    std::cerr << "faultline: --html goes with --trend EXPERIMENT\n";
    return kExitUsage;
  }
  std::string where;
  Result<std::vector<store::RunRecord>> runs = std::vector<store::RunRecord>();
  if (!a.controller.empty()) {
    where = "controller " + a.controller;
    runs = ListRunsViaController(a.controller, a.tls, a.limit, a.experiment);
  } else {
    auto history = OpenHistory(a.history);
    if (!history.ok()) {
      std::cerr << "faultline: " << history.status().message() << "\n";
      return ExitCodeForStoreError(history.status());
    }
    where = (*history)->Describe();
    store::RunFilter filter;
    filter.limit = a.limit;
    filter.experiment = a.experiment;
    runs = (*history)->ListRuns(filter);
  }
  if (!runs.ok()) {
    std::cerr << "faultline: " << runs.status().message() << "\n";
    return ExitCodeForStoreError(runs.status());
  }
  if (a.output == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *runs) {
      out.push_back(
          {{"run_id", r.id},
           {"experiment", r.experiment},
           {"state", store::RunStateName(r.state)},
           {"verdict", r.verdict.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.verdict)},
           {"started_at", report::IsoTime(r.started_unix_ms)},
           {"ended_at", report::IsoTime(r.ended_unix_ms)},
           {"duration_s", r.ended_unix_ms > 0
                              ? nlohmann::json((r.ended_unix_ms - r.started_unix_ms) / 1000.0)
                              : nlohmann::json(nullptr)},
           {"source", r.source}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (runs->empty()) {
    std::cout << "no runs recorded in " << where << "\n";
    return 0;
  }
  std::cout << fmt::format("{:<14} {:<24} {:<28} {:<12} {:<8} {:>9}  {}\n", "RUN", "STARTED (UTC)",
                           "EXPERIMENT", "STATE", "VERDICT", "DURATION", "SOURCE");
  for (const auto& r : *runs) {
    std::string duration =
        r.ended_unix_ms > 0 ? fmt::format("{:.1f}s", (r.ended_unix_ms - r.started_unix_ms) / 1000.0)
                            : "-";
    std::cout << fmt::format("{:<14} {:<24} {:<28} {:<12} {:<8} {:>9}  {}\n", r.id,
                             report::IsoTime(r.started_unix_ms), r.experiment,
                             store::RunStateName(r.state), r.verdict.empty() ? "-" : r.verdict,
                             duration, r.source);
  }
  return 0;
}

}  // namespace

CLI::Option* AddHistoryFlag(CLI::App* verb, std::string* url) {
  return verb->add_option("--history", *url,
                          "Run history: sqlite:///path, a file path or postgresql://... (default "
                          "$FAULTLINE_HISTORY, else sqlite:///var/lib/faultline/history.db)");
}

Result<std::unique_ptr<store::RunStore>> OpenHistory(const std::string& url) {
  std::string where = EffectiveUrl(url);
  if (where == "none") {
    return InvalidArgument("the history is turned off (\"none\"): give --history URL");
  }
  return store::OpenRunStore(where);
}

int ExitCodeForStoreError(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ||
                 s.code() == StatusCode::kAlreadyExists
             ? kExitUsage
             : kExitInfra;
}

void RecordRunInHistory(const std::string& url, const std::string& spec_path,
                        const engine::RunResult& result) {
  std::string where = EffectiveUrl(url);
  if (where == "none") return;
  auto warn = [&](const std::string& why) {
    std::cerr << "faultline: warning: run " << result.run_id << " was not recorded in the history ("
              << why << "); its verdict and exit code are unaffected\n";
  };
  auto history = store::OpenRunStore(where);
  if (!history.ok()) return warn(history.status().message());
  std::ifstream in(spec_path);
  std::stringstream spec;
  spec << in.rdbuf();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  store::RunRecord run;
  run.id = result.run_id;
  run.experiment = result.experiment;
  run.spec_yaml = spec.str();
  run.state = store::RunState::kFinished;
  run.verdict = engine::VerdictName(result.verdict);
  run.started_unix_ms = result.started_unix_ms;
  run.ended_unix_ms = result.ended_unix_ms;
  run.report_json = report::RenderJson(result);
  run.source = "cli";
  run.owner = fmt::format("cli:{}:{}", host, getpid());
  if (auto s = (*history)->CreateRun(run); !s.ok()) return warn(s.message());
}

Result<report::ReportModel> LoadBaseline(const std::string& url, const std::string& which,
                                         const std::string& experiment) {
  auto history = OpenHistory(url);
  if (!history.ok()) return history.status();
  store::StoredRun stored;
  if (which == "last-pass") {
    store::RunFilter filter;
    filter.limit = 0;
    filter.experiment = experiment;
    filter.state = store::RunState::kFinished;
    auto runs = (*history)->ListRuns(filter);
    if (!runs.ok()) return runs.status();
    auto it = std::find_if(runs->begin(), runs->end(),
                           [](const store::RunRecord& r) { return r.verdict == "PASS"; });
    if (it == runs->end()) {
      return NotFound("no PASS run of " + experiment + " in " + (*history)->Describe());
    }
    auto got = (*history)->GetRun(it->id);
    if (!got.ok()) return got.status();
    stored = std::move(*got);
  } else {
    auto got = (*history)->GetRun(which);
    if (!got.ok()) return got.status();
    stored = std::move(*got);
  }
  if (stored.run.experiment != experiment) {
    return InvalidArgument("run " + stored.run.id + " is of experiment " + stored.run.experiment +
                           ", not " + experiment);
  }
  return report::LoadStoredReport(stored);
}

void AddHistoryCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<HistoryArgs>();
  auto* verb = app.add_subcommand("history", "List recorded runs, newest first");
  verb->add_option("--limit", args->limit, "At most this many runs (0: all; default 20)")
      ->check(CLI::NonNegativeNumber);
  verb->add_option("--experiment", args->experiment, "Only runs of this experiment");
  verb->add_option("--output", args->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  verb->add_option("--trend", args->trend,
                   "Time to recover of EXPERIMENT over its last --limit finished runs, per "
                   "objective, with each run's bracket [lo, hi]");
  verb->add_option("--html", args->html,
                   "With --trend: also write the trend as an HTML page with an SVG chart per "
                   "objective (self-contained: no script, no external resource)");
  AddControllerSourceFlags(verb, AddHistoryFlag(verb, &args->history), &args->controller,
                           &args->tls);
  verb->callback([args, exit_code] { *exit_code = History(*args); });
}

}  // namespace faultline::cli
