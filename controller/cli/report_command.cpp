#include "controller/cli/report_command.h"

#include <iostream>

#include "controller/cli/history_command.h"
#include "controller/report/stored_report.h"

namespace faultline::cli {

namespace {

struct ReportArgs {
  std::string run;
  std::string format = "text";
  std::string history;
};

int Report(const ReportArgs& a) {
  auto history = OpenHistory(a.history);
  if (!history.ok()) {
    std::cerr << "faultline: " << history.status().message() << "\n";
    return ExitCodeForStoreError(history.status());
  }
  auto stored = (*history)->GetRun(a.run);
  if (!stored.ok()) {
    std::cerr << "faultline: " << stored.status().message() << "\n";
    return ExitCodeForStoreError(stored.status());
  }
  auto out =
      a.format == "json" ? report::RenderStoredJson(*stored) : report::RenderStoredText(*stored);
  if (!out.ok()) {
    std::cerr << "faultline: run " << stored->run.id << ": " << out.status().message() << "\n";
    return 4;
  }
  std::cout << *out;
  return 0;
}

}  // namespace

void AddReportCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ReportArgs>();
  auto* verb = app.add_subcommand("report", "Show a recorded run's report (with annotations)");
  verb->add_option("run", args->run, "Run id (or a unique prefix of at least 4 characters)")
      ->required();
  verb->add_option("--format", args->format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  AddHistoryFlag(verb, &args->history);
  verb->callback([args, exit_code] { *exit_code = Report(*args); });
}

}  // namespace faultline::cli
