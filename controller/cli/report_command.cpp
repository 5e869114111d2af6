#include "controller/cli/report_command.h"

#include <filesystem>
#include <iostream>
#include <variant>

#include "controller/cli/controller_commands.h"
#include "controller/cli/history_command.h"
#include "controller/report/html_report.h"
#include "controller/report/junit_report.h"
#include "controller/report/report.h"
#include "controller/report/stored_report.h"

namespace faultline::cli {

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitInfra = 4;

struct ReportArgs {
  std::string source;
  std::string format = "text";
  std::string out;
  std::string history;
  std::string controller;
  ClientTlsArgs tls;
};

// A path names a saved report; anything else is a run id in the history.
bool IsReportFile(const std::string& source) {
  std::error_code ec;
  return std::filesystem::is_regular_file(source, ec) || source.find('/') != std::string::npos ||
         source.ends_with(".json");
}

// The rendered report of a run in the history, or the exit code after printing why not.
std::variant<std::string, int> RenderFromHistory(const ReportArgs& a) {
  Result<store::StoredRun> stored = store::StoredRun();
  if (!a.controller.empty()) {
    stored = GetRunViaController(a.controller, a.tls, a.source);
  } else {
    auto history = OpenHistory(a.history);
    if (!history.ok()) {
      std::cerr << "faultline: " << history.status().message() << "\n";
      return ExitCodeForStoreError(history.status());
    }
    stored = (*history)->GetRun(a.source);
  }
  if (!stored.ok()) {
    std::cerr << "faultline: " << stored.status().message() << " (SOURCE is a run id or a JSON "
              << "report file)\n";
    return ExitCodeForStoreError(stored.status());
  }
  // Text and JSON also cover runs without a report (still running, interrupted).
  if (a.format == "text" || a.format == "json") {
    auto out =
        a.format == "json" ? report::RenderStoredJson(*stored) : report::RenderStoredText(*stored);
    if (!out.ok()) {
      std::cerr << "faultline: run " << stored->run.id << ": " << out.status().message() << "\n";
      return kExitInfra;
    }
    return *out;
  }
  auto model = report::LoadStoredReport(*stored);
  if (!model.ok()) {
    std::cerr << "faultline: " << model.status().message() << "\n";
    return model.status().code() == StatusCode::kFailedPrecondition ? kExitUsage : kExitInfra;
  }
  return RenderReport(*model, a.format);
}

int Report(const ReportArgs& a) {
  std::string rendered;
  if (IsReportFile(a.source)) {
    auto model = report::LoadReportFile(a.source);
    if (!model.ok()) {
      std::cerr << "faultline: " << model.status().message() << "\n";
      return kExitUsage;
    }
    rendered = RenderReport(*model, a.format);
  } else {
    auto out = RenderFromHistory(a);
    if (std::holds_alternative<int>(out)) return std::get<int>(out);
    rendered = std::move(std::get<std::string>(out));
  }
  if (a.out.empty() || a.out == "-") {
    std::cout << rendered;
    std::cout.flush();
    return std::cout.good() ? 0 : kExitInfra;
  }
  if (auto s = report::WriteReportFile(a.out, rendered); !s.ok()) {
    std::cerr << "faultline: " << s.message() << "\n";
    return kExitInfra;
  }
  return 0;
}

}  // namespace

std::string RenderReport(const report::ReportModel& model, const std::string& format) {
  if (format == "json") return report::RenderJson(model);
  if (format == "html") return report::RenderHtml(model);
  if (format == "junit") return report::RenderJunit(model);
  return report::RenderText(model);
}

bool WriteReportFiles(const report::ReportModel& model, const ReportFiles& files) {
  bool ok = true;
  for (const auto& [path, format] : {std::pair{files.json, "json"}, std::pair{files.html, "html"},
                                     std::pair{files.junit, "junit"}}) {
    if (path.empty()) continue;
    if (auto s = report::WriteReportFile(path, RenderReport(model, format)); !s.ok()) {
      std::cerr << "faultline: " << s.message() << "\n";
      ok = false;
    }
  }
  return ok;
}

void AddReportFileFlags(CLI::App* verb, ReportFiles* files) {
  verb->add_option("--report-json", files->json, "Also write the JSON report to this path");
  verb->add_option("--report-html", files->html,
                   "Also write the HTML report (one self-contained file: verdict, objectives, "
                   "SVG timeline, evidence) to this path");
  verb->add_option("--report-junit", files->junit,
                   "Also write a JUnit XML report (one testcase per objective) to this path, for "
                   "CI systems");
}

void AddReportCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ReportArgs>();
  auto* cmd = app.add_subcommand(
      "report",
      "Render a run's report as text, json, html or junit: a recorded run (with its annotations) "
      "or a saved JSON report (from `run --report-json` or `run --output json`)");
  cmd->add_option("source", args->source,
                  "Run id (or a unique prefix of at least 4 characters), or a JSON report file")
      ->required();
  cmd->add_option("--format,-f", args->format,
                  "text (default), json, html (self-contained page with an SVG timeline) or "
                  "junit (JUnit XML for CI)")
      ->check(CLI::IsMember({"text", "json", "html", "junit"}));
  cmd->add_option("--out,-o", args->out, "Write to this file instead of stdout");
  AddControllerSourceFlags(cmd, AddHistoryFlag(cmd, &args->history), &args->controller, &args->tls);
  cmd->callback([args, exit_code] { *exit_code = Report(*args); });
}

}  // namespace faultline::cli
