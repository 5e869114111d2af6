#include "controller/cli/annotate_command.h"

#include <pwd.h>
#include <spdlog/fmt/fmt.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "controller/cli/controller_commands.h"
#include "controller/cli/history_command.h"
#include "controller/report/stored_report.h"

namespace faultline::cli {

namespace {

struct AnnotateArgs {
  std::string run;
  std::string text;
  std::string author;
  std::string history;
  std::string controller;
  ClientTlsArgs tls;
};

// $USER, else the login name of the real uid.
std::string DefaultAuthor() {
  if (const char* user = std::getenv("USER"); user != nullptr && *user != '\0') return user;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr) return pw->pw_name;
  return "unknown";
}

int Annotate(const AnnotateArgs& a) {
  std::unique_ptr<store::RunStore> history;
  if (a.controller.empty()) {
    auto opened = OpenHistory(a.history);
    if (!opened.ok()) {
      std::cerr << "faultline: " << opened.status().message() << "\n";
      return ExitCodeForStoreError(opened.status());
    }
    history = std::move(*opened);
  }
  // Resolves a prefix to the full id.
  auto stored = history ? history->GetRun(a.run) : GetRunViaController(a.controller, a.tls, a.run);
  if (!stored.ok()) {
    std::cerr << "faultline: " << stored.status().message() << "\n";
    return ExitCodeForStoreError(stored.status());
  }
  store::Annotation note;
  note.run_id = stored->run.id;
  note.author = a.author.empty() ? DefaultAuthor() : a.author;
  note.text = a.text;
  auto added =
      history ? history->AddAnnotation(note) : AnnotateViaController(a.controller, a.tls, note);
  if (!added.ok()) {
    std::cerr << "faultline: " << added.status().message() << "\n";
    return ExitCodeForStoreError(added.status());
  }
  std::cout << fmt::format("annotated run {} at {} ({:+.1f}s from its start)\n", note.run_id,
                           report::IsoTime(added->at_unix_ms),
                           (added->at_unix_ms - stored->run.started_unix_ms) / 1000.0);
  return 0;
}

}  // namespace

void AddAnnotateCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<AnnotateArgs>();
  auto* verb = app.add_subcommand(
      "annotate", "Record a human event on a run (\"paged on-call\"), stamped with the time now");
  verb->add_option("run", args->run, "Run id (or a unique prefix)")->required();
  verb->add_option("text", args->text, "What happened")->required();
  verb->add_option("--author", args->author, "Who (default $USER)");
  AddControllerSourceFlags(verb, AddHistoryFlag(verb, &args->history), &args->controller,
                           &args->tls);
  verb->callback([args, exit_code] { *exit_code = Annotate(*args); });
}

}  // namespace faultline::cli
