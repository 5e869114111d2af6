#include "controller/cli/schedule_command.h"

#include <spdlog/fmt/fmt.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/clock.h"
#include "controller/cli/controller_commands.h"
#include "controller/cli/history_command.h"
#include "controller/daemon/remote_schedule_service.h"
#include "controller/experiment/parser.h"
#include "controller/report/stored_report.h"
#include "controller/schedule/cron.h"
#include "controller/schedule/schedule_service.h"

namespace faultline::cli {

namespace {

constexpr int kExitUsage = 2;

struct ScheduleArgs {
  std::string store;
  std::string controller;
  ClientTlsArgs tls;
  std::string output = "text";
  // add
  std::string name;
  std::string experiment;
  std::string cron;
  std::string tz = "UTC";
  std::string concurrency = "forbid";
  std::string window;
  std::vector<std::string> blackout;
  bool paused = false;
  int limit = 20;
};

Result<std::unique_ptr<schedule::ScheduleService>> Connect(const ScheduleArgs& a) {
  if (!a.controller.empty()) {
    auto stub = DialController(a.controller, a.tls);
    if (!stub.ok()) return stub.status();
    return daemon::MakeRemoteScheduleService(*stub, a.controller);
  }
  auto store = OpenHistory(a.store);
  if (!store.ok()) return store.status();
  return schedule::MakeStoreScheduleService(std::move(*store));
}

int Fail(const Status& s) {
  std::cerr << "faultline: " << s.message() << "\n";
  return ExitCodeForStoreError(s);
}

// The next due time after now, in the schedule's zone, as "2026-11-23T08:30:00.000Z".
std::string NextDue(const store::Schedule& s) {
  auto cron = schedule::CronExpression::Parse(s.cron);
  auto tz = schedule::TimeZone::Load(s.tz);
  if (!cron.ok() || !tz.ok()) return "invalid";
  auto next = cron->NextAfter(SystemClock::Instance().WallUnixMs(), *tz);
  return next ? report::IsoTime(*next) : "never";
}

int Add(const ScheduleArgs& a) {
  auto parsed = experiment::ParseExperimentFile(a.experiment);
  if (!parsed.ok()) {
    for (const auto& d : parsed.errors) std::cerr << "error: " << d.ToString() << "\n";
    std::cerr << "faultline: " << a.experiment << " is invalid; the schedule was not added\n";
    return kExitUsage;
  }
  std::ifstream in(a.experiment);
  std::stringstream text;
  text << in.rdbuf();
  store::Schedule s;
  s.name = a.name;
  s.spec_yaml = text.str();
  s.cron = a.cron;
  s.tz = a.tz;
  s.concurrency = *store::ParseConcurrencyPolicy(a.concurrency);  // checked by CLI11
  s.window = a.window;
  s.blackout_dates = a.blackout;
  s.paused = a.paused;
  auto service = Connect(a);
  if (!service.ok()) return Fail(service.status());
  if (auto st = (*service)->Add(s); !st.ok()) return Fail(st);
  std::cout << "schedule " << s.name << " added (" << parsed.experiment->name << ", \"" << s.cron
            << "\" in " << s.tz << (s.paused ? ", paused" : "") << "); next due " << NextDue(s)
            << "\n";
  return 0;
}

int List(const ScheduleArgs& a) {
  auto service = Connect(a);
  if (!service.ok()) return Fail(service.status());
  auto list = (*service)->List();
  if (!list.ok()) return Fail(list.status());
  nlohmann::json out = nlohmann::json::array();
  if (a.output == "text") {
    if (list->empty()) {
      std::cout << "no schedules in " << (*service)->Describe() << "\n";
      return 0;
    }
    std::cout << fmt::format("{:<24} {:<16} {:<18} {:<7} {:<12} {:<25} {}\n", "NAME", "CRON", "TZ",
                             "STATE", "WINDOW", "NEXT DUE (UTC)", "LAST");
  }
  for (const auto& s : *list) {
    auto firings = (*service)->Firings(s.name, 1);
    std::string last =
        firings.ok() && !firings->empty()
            ? report::IsoTime((*firings)[0].due_unix_ms) + " " + (*firings)[0].outcome
            : "-";
    std::string next = s.paused ? "-" : NextDue(s);
    if (a.output == "json") {
      out.push_back({{"name", s.name},
                     {"cron", s.cron},
                     {"tz", s.tz},
                     {"concurrency", store::ConcurrencyPolicyName(s.concurrency)},
                     {"window", s.window},
                     {"blackout_dates", s.blackout_dates},
                     {"paused", s.paused},
                     {"next_due", next},
                     {"last", last}});
    } else {
      std::cout << fmt::format("{:<24} {:<16} {:<18} {:<7} {:<12} {:<25} {}\n", s.name, s.cron,
                               s.tz, s.paused ? "paused" : "active",
                               s.window.empty() ? "any" : s.window, next, last);
    }
  }
  if (a.output == "json") std::cout << out.dump(2) << "\n";
  return 0;
}

int Firings(const ScheduleArgs& a) {
  auto service = Connect(a);
  if (!service.ok()) return Fail(service.status());
  auto firings = (*service)->Firings(a.name, a.limit);
  if (!firings.ok()) return Fail(firings.status());
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : *firings) {
    if (a.output == "json") {
      out.push_back({{"schedule", f.schedule},
                     {"due", report::IsoTime(f.due_unix_ms)},
                     {"recorded", report::IsoTime(f.recorded_unix_ms)},
                     {"outcome", f.outcome},
                     {"run_id", f.run_id},
                     {"controller", f.holder}});
    } else {
      std::cout << fmt::format("{:<24} {:<25} {:<40} {}\n", f.schedule,
                               report::IsoTime(f.due_unix_ms), f.outcome,
                               f.run_id.empty() ? "" : "run " + f.run_id);
    }
  }
  if (a.output == "json") std::cout << out.dump(2) << "\n";
  return 0;
}

int SetPaused(const ScheduleArgs& a, bool paused) {
  auto service = Connect(a);
  if (!service.ok()) return Fail(service.status());
  if (auto st = (*service)->SetPaused(a.name, paused); !st.ok()) return Fail(st);
  std::cout << "schedule " << a.name << (paused ? " paused" : " resumed") << "\n";
  return 0;
}

int Remove(const ScheduleArgs& a) {
  auto service = Connect(a);
  if (!service.ok()) return Fail(service.status());
  if (auto st = (*service)->Remove(a.name); !st.ok()) return Fail(st);
  std::cout << "schedule " << a.name << " removed (its firings stay in the history)\n";
  return 0;
}

void AddStoreFlag(CLI::App* verb, ScheduleArgs* args) {
  CLI::Option* store =
      verb->add_option("--store", args->store,
                       "Where schedules live: sqlite:///path, a file path or postgresql://... (the "
                       "controller's store; default as for --history)");
  AddControllerSourceFlags(verb, store, &args->controller, &args->tls);
}

}  // namespace

void AddScheduleCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ScheduleArgs>();
  auto* verb = app.add_subcommand("schedule",
                                  "Scheduled game days (cron, time zone, window, "
                                  "blackout dates; missed runs are recorded)");
  verb->require_subcommand(1);

  auto* add = verb->add_subcommand("add", "Add a schedule");
  add->add_option("name", args->name, "Schedule name (a-z, 0-9, '-')")->required();
  add->add_option("--experiment,-f", args->experiment, "Experiment file to run")
      ->required()
      ->check(CLI::ExistingFile);
  add->add_option("--cron", args->cron,
                  "5-field cron expression (\"30 2 * * 1-5\") or @daily, @hourly, ...")
      ->required();
  add->add_option("--tz", args->tz, "IANA time zone of cron, window and dates (default UTC)");
  add->add_option("--concurrency", args->concurrency,
                  "forbid (default: skip a due time while the previous run still runs) or allow")
      ->check(CLI::IsMember({"forbid", "allow"}));
  add->add_option("--window", args->window,
                  "Only start inside this local time window, HH:MM-HH:MM (may wrap midnight)");
  add->add_option("--blackout", args->blackout,
                  "A local date (YYYY-MM-DD) never to start on; "
                  "repeatable");
  add->add_flag("--paused", args->paused, "Add it paused");
  AddStoreFlag(add, args.get());
  add->callback([args, exit_code] { *exit_code = Add(*args); });

  auto* list = verb->add_subcommand("list", "List schedules with their next due time");
  list->add_option("--output", args->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  AddStoreFlag(list, args.get());
  list->callback([args, exit_code] { *exit_code = List(*args); });

  auto* firings = verb->add_subcommand(
      "firings", "What became of each due time: started, missed:<why>, skipped:<why>");
  firings->add_option("name", args->name, "Schedule name (default: all)");
  firings->add_option("--limit", args->limit, "At most this many (default 20; 0: all)")
      ->check(CLI::NonNegativeNumber);
  firings->add_option("--output", args->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  AddStoreFlag(firings, args.get());
  firings->callback([args, exit_code] { *exit_code = Firings(*args); });

  auto* rm = verb->add_subcommand("rm", "Remove a schedule");
  rm->add_option("name", args->name, "Schedule name")->required();
  AddStoreFlag(rm, args.get());
  rm->callback([args, exit_code] { *exit_code = Remove(*args); });

  auto* pause = verb->add_subcommand("pause",
                                     "Pause a schedule (due times are recorded as "
                                     "skipped:paused)");
  pause->add_option("name", args->name, "Schedule name")->required();
  AddStoreFlag(pause, args.get());
  pause->callback([args, exit_code] { *exit_code = SetPaused(*args, true); });

  auto* resume = verb->add_subcommand("resume", "Resume a paused schedule");
  resume->add_option("name", args->name, "Schedule name")->required();
  AddStoreFlag(resume, args.get());
  resume->callback([args, exit_code] { *exit_code = SetPaused(*args, false); });
}

}  // namespace faultline::cli
