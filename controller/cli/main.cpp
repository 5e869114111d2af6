// faultline: the operator CLI.
#include <CLI/CLI.hpp>

#include "controller/cli/sandbox_command.h"

int main(int argc, char** argv) {
  CLI::App app{"faultline: chaos experiments with measured recovery times"};
  app.require_subcommand(1);
  int exit_code = 0;
  faultline::cli::AddSandboxCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return exit_code;
}
