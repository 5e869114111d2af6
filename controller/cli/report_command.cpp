#include "controller/cli/report_command.h"

#include <iostream>

#include "controller/report/html_report.h"
#include "controller/report/junit_report.h"
#include "controller/report/report.h"

namespace faultline::cli {

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitInfra = 4;

struct ReportArgs {
  std::string source;
  std::string format = "text";
  std::string out;
};

int Report(const ReportArgs& a) {
  auto model = report::LoadReportFile(a.source);
  if (!model.ok()) {
    std::cerr << "faultline: " << model.status().message() << "\n";
    return kExitUsage;
  }
  std::string rendered = RenderReport(*model, a.format);
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
      "Render a saved JSON report (from `run --report-json` or `run --output json`) as text, "
      "json, html or junit");
  cmd->add_option("source", args->source, "JSON report file")->required();
  cmd->add_option("--format,-f", args->format,
                  "text (default), json, html (self-contained page with an SVG timeline) or "
                  "junit (JUnit XML for CI)")
      ->check(CLI::IsMember({"text", "json", "html", "junit"}));
  cmd->add_option("--out,-o", args->out, "Write to this file instead of stdout");
  cmd->callback([args, exit_code] { *exit_code = Report(*args); });
}

}  // namespace faultline::cli
