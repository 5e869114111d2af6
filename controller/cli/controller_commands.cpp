#include "controller/cli/controller_commands.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "common/atomic_file.h"
#include "common/certificates.h"
#include "common/duration.h"
#include "common/grpc_status.h"
#include "common/signals.h"
#include "controller/daemon/remote_schedule_service.h"
#include "controller/daemon/store_proto.h"
#include "controller/report/report.h"
#include "faultline/v1/controller.grpc.pb.h"

namespace faultline::cli {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitInfra = 4;

// A stub for `address`, or the exit code after saying why not.
int Dial(const std::string& address, const ClientTlsArgs& tls,
         std::shared_ptr<v1::Controller::Stub>* stub) {
  auto dialed = DialController(address, tls);
  if (!dialed.ok()) {
    std::cerr << "faultline: " << dialed.status().message() << "\n";
    return kExitUsage;
  }
  *stub = std::move(*dialed);
  return 0;
}

void SetDeadline(grpc::ClientContext& ctx, std::chrono::seconds d) {
  ctx.set_deadline(std::chrono::system_clock::now() + d);
}

int Failed(const std::string& what, const std::string& address, const grpc::Status& s) {
  std::cerr << "faultline: " << what << " on controller " << address << ": " << s.error_message()
            << "\n";
  return s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ? kExitUsage : kExitInfra;
}

std::string Labels(const google::protobuf::Map<std::string, std::string>& labels) {
  std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  std::string out;
  for (const auto& [k, v] : sorted) out += (out.empty() ? "" : ",") + k + "=" + v;
  return out;
}

struct ControllerArgs {
  std::string controller;
  std::string output = "text";
  std::string reason;
  bool include_reverted = false;
  ClientTlsArgs tls;
};

void AddCommon(CLI::App* verb, ControllerArgs* a) {
  verb->add_option("--controller", a->controller, "faultline-controller address, HOST:PORT")
      ->required();
  verb->add_option("--output", a->output, "text or json")->check(CLI::IsMember({"text", "json"}));
  AddClientTlsFlags(verb, &a->tls);
}

int Faults(const ControllerArgs& a) {
  std::shared_ptr<v1::Controller::Stub> stub;
  if (int rc = Dial(a.controller, a.tls, &stub); rc != 0) return rc;
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(30));
  v1::ListFleetFaultsRequest req;
  req.set_include_reverted(a.include_reverted);
  v1::ListFleetFaultsResponse resp;
  if (auto s = stub->ListFaults(&ctx, req, &resp); !s.ok()) {
    return Failed("ListFaults", a.controller, s);
  }
  if (a.output == "json") {
    nlohmann::json out{{"faults", nlohmann::json::array()},
                       {"unreachable", nlohmann::json::array()}};
    for (const auto& f : resp.faults()) {
      out["faults"].push_back({{"agent", f.agent_id()},
                               {"run_id", f.fault().run_id()},
                               {"fault_id", f.fault().fault_id()},
                               {"state", v1::FaultState_Name(f.fault().state())},
                               {"applied_at_unix_ms", f.fault().applied_at_unix_ms()},
                               {"lease_expires_unix_ms", f.fault().lease_expires_unix_ms()},
                               {"revert_reason", f.fault().revert_reason()}});
    }
    for (const auto& e : resp.unreachable()) {
      out["unreachable"].push_back({{"agent", e.agent_id()}, {"error", e.error()}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    if (resp.faults().empty()) std::cout << "no active faults in the fleet\n";
    for (const auto& f : resp.faults()) {
      std::cout << f.agent_id() << "  run " << f.fault().run_id() << "  fault "
                << f.fault().fault_id() << "  " << v1::FaultState_Name(f.fault().state())
                << (f.fault().revert_reason().empty() ? "" : " (" + f.fault().revert_reason() + ")")
                << "\n";
    }
    for (const auto& e : resp.unreachable()) {
      std::cout << e.agent_id() << "  UNKNOWN: " << e.error() << "\n";
    }
  }
  return resp.unreachable().empty() ? 0 : kExitInfra;
}

int Halt(const ControllerArgs& a) {
  std::shared_ptr<v1::Controller::Stub> stub;
  if (int rc = Dial(a.controller, a.tls, &stub); rc != 0) return rc;
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(60));
  v1::HaltRequest req;
  req.set_reason(a.reason);
  v1::HaltResponse resp;
  if (auto s = stub->Halt(&ctx, req, &resp); !s.ok()) return Failed("Halt", a.controller, s);
  if (a.output == "json") {
    nlohmann::json out{{"agents", resp.agents()},
                       {"faults_reverted", resp.faults_reverted()},
                       {"runs_cancelled", resp.runs_cancelled()},
                       {"elapsed_s", resp.elapsed_s()},
                       {"failed", nlohmann::json::array()}};
    for (const auto& e : resp.failed()) {
      out["failed"].push_back({{"agent", e.agent_id()}, {"error", e.error()}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf(
        "halted: %u agent(s) asked, %u fault(s) reverted, %u run(s) cancelled in %.3fs; no run "
        "starts until `faultline resume`\n",
        resp.agents(), resp.faults_reverted(), resp.runs_cancelled(), resp.elapsed_s());
    for (const auto& e : resp.failed()) {
      std::printf("  %s did NOT confirm: %s (its faults end when their leases expire)\n",
                  e.agent_id().c_str(), e.error().c_str());
    }
  }
  return resp.failed().empty() ? 0 : kExitInfra;
}

int Resume(const ControllerArgs& a) {
  std::shared_ptr<v1::Controller::Stub> stub;
  if (int rc = Dial(a.controller, a.tls, &stub); rc != 0) return rc;
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(10));
  v1::ResumeResponse resp;
  if (auto s = stub->Resume(&ctx, v1::ResumeRequest(), &resp); !s.ok()) {
    return Failed("Resume", a.controller, s);
  }
  std::cout << (resp.was_halted() ? "resumed: runs may start again\n" : "was not halted\n");
  return 0;
}

}  // namespace

Result<std::shared_ptr<v1::Controller::Stub>> DialController(const std::string& address,
                                                             const ClientTlsArgs& tls) {
  auto creds = ResolveClientCredentials(tls, Role::kController);
  if (!creds.ok()) return creds.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return std::shared_ptr<v1::Controller::Stub>(
      v1::Controller::NewStub(grpc::CreateCustomChannel(address, *creds, args)));
}

Result<std::vector<store::RunRecord>> ListRunsViaController(const std::string& address,
                                                            const ClientTlsArgs& tls, int limit,
                                                            const std::string& experiment) {
  auto stub = DialController(address, tls);
  if (!stub.ok()) return stub.status();
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(30));
  v1::ListRunsRequest req;
  req.set_limit(limit > 0 ? static_cast<uint32_t>(limit) : 0);
  req.set_experiment(experiment);
  v1::ListRunsResponse resp;
  if (auto s = (*stub)->ListRuns(&ctx, req, &resp); !s.ok())
    return FromGrpcStatus(s, "controller " + address);
  std::vector<store::RunRecord> out;
  for (const auto& r : resp.runs()) out.push_back(daemon::StoredRunFromProto(r).run);
  return out;
}

Result<store::StoredRun> GetRunViaController(const std::string& address, const ClientTlsArgs& tls,
                                             const std::string& run_id) {
  auto stub = DialController(address, tls);
  if (!stub.ok()) return stub.status();
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(30));
  v1::GetRunRequest req;
  req.set_run_id(run_id);
  v1::RunSummary resp;
  if (auto s = (*stub)->GetRun(&ctx, req, &resp); !s.ok())
    return FromGrpcStatus(s, "controller " + address);
  return daemon::StoredRunFromProto(resp);
}

Result<store::Annotation> AnnotateViaController(const std::string& address,
                                                const ClientTlsArgs& tls,
                                                const store::Annotation& note) {
  auto stub = DialController(address, tls);
  if (!stub.ok()) return stub.status();
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(30));
  v1::AnnotateRunRequest req;
  req.set_run_id(note.run_id);
  req.set_author(note.author);
  req.set_text(note.text);
  v1::RunAnnotation resp;
  if (auto s = (*stub)->AnnotateRun(&ctx, req, &resp); !s.ok()) {
    return FromGrpcStatus(s, "controller " + address);
  }
  return daemon::AnnotationFromProto(resp);
}

void AddControllerSourceFlags(CLI::App* verb, CLI::Option* store_flag, std::string* address,
                              ClientTlsArgs* tls) {
  CLI::Option* controller = verb->add_option(
      "--controller", *address,
      "Ask a faultline-controller, HOST:PORT, instead of opening the store (its store: the "
      "history shared by every controller on it)");
  controller->excludes(store_flag);
  AddClientTlsFlags(verb, tls);
}

struct TokenArgs {
  ControllerArgs common;
  std::string role;
  std::string team;
  std::string expires;
  std::string name;
  std::string id;
};

std::string UtcTime(int64_t unix_ms) {
  if (unix_ms == 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

nlohmann::json TokenJson(const v1::AccessToken& t) {
  return {{"id", t.id()},
          {"name", t.name()},
          {"role", t.role()},
          {"team", t.team()},
          {"created_unix_ms", t.created_unix_ms()},
          {"expires_unix_ms", t.expires_unix_ms()},
          {"revoked_unix_ms", t.revoked_unix_ms()},
          {"created_by", t.created_by()}};
}

int TokenCreate(const TokenArgs& a) {
  int64_t ttl_s = 0;
  if (!a.expires.empty()) {
    // Days ("30d", up to 3650) or a duration ("12h", up to 7 days).
    const std::string& e = a.expires;
    if (e.size() >= 2 && e.back() == 'd' && e.size() <= 5 &&
        e.find_first_not_of("0123456789") == e.size() - 1) {
      ttl_s = std::stoll(e.substr(0, e.size() - 1)) * 86400;
    } else if (auto d = ParseDuration(e); d.ok()) {
      ttl_s = std::chrono::duration_cast<std::chrono::seconds>(*d).count();
    }
    if (ttl_s <= 0 || ttl_s > 3650LL * 86400) {
      std::cerr << "faultline: --expires '" << e
                << "': want a positive lifetime such as 30d (days, at most 3650d) or 12h\n";
      return kExitUsage;
    }
  }
  std::shared_ptr<v1::Controller::Stub> stub;
  if (int rc = Dial(a.common.controller, a.common.tls, &stub); rc != 0) return rc;
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(30));
  v1::CreateTokenRequest req;
  req.set_role(a.role);
  req.set_team(a.team);
  req.set_ttl_s(ttl_s);
  req.set_name(a.name);
  v1::CreateTokenResponse resp;
  if (auto s = stub->CreateToken(&ctx, req, &resp); !s.ok()) {
    return Failed("CreateToken", a.common.controller, s);
  }
  if (a.common.output == "json") {
    nlohmann::json out = TokenJson(resp.record());
    out["token"] = resp.token();
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << resp.token() << "\n";
    std::cerr << "token " << resp.record().id() << ": role " << resp.record().role()
              << (resp.record().team().empty() ? "" : ", team " + resp.record().team())
              << ", expires " << UtcTime(resp.record().expires_unix_ms())
              << ". It is shown only this once; the controller keeps only its hash.\n";
  }
  return 0;
}

int TokenList(const TokenArgs& a) {
  std::shared_ptr<v1::Controller::Stub> stub;
  if (int rc = Dial(a.common.controller, a.common.tls, &stub); rc != 0) return rc;
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(30));
  v1::ListTokensResponse resp;
  if (auto s = stub->ListTokens(&ctx, v1::ListTokensRequest(), &resp); !s.ok()) {
    return Failed("ListTokens", a.common.controller, s);
  }
  if (a.common.output == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& t : resp.tokens()) out.push_back(TokenJson(t));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (resp.tokens().empty()) std::cout << "no tokens\n";
  for (const auto& t : resp.tokens()) {
    std::cout << t.id() << "  " << t.role() << "  team " << (t.team().empty() ? "-" : t.team())
              << "  created " << UtcTime(t.created_unix_ms()) << " by " << t.created_by()
              << "  expires " << UtcTime(t.expires_unix_ms())
              << (t.revoked_unix_ms() ? "  REVOKED " + UtcTime(t.revoked_unix_ms()) : "")
              << (t.name().empty() ? "" : "  " + t.name()) << "\n";
  }
  return 0;
}

int TokenRevoke(const TokenArgs& a) {
  std::shared_ptr<v1::Controller::Stub> stub;
  if (int rc = Dial(a.common.controller, a.common.tls, &stub); rc != 0) return rc;
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(30));
  v1::RevokeTokenRequest req;
  req.set_id(a.id);
  v1::RevokeTokenResponse resp;
  if (auto s = stub->RevokeToken(&ctx, req, &resp); !s.ok()) {
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
      std::cerr << "faultline: " << s.error_message() << "\n";
      return kExitUsage;
    }
    return Failed("RevokeToken", a.common.controller, s);
  }
  std::cout << "token " << a.id << " revoked\n";
  return 0;
}

void AddTokenCommands(CLI::App& app, int* exit_code) {
  static TokenArgs create_args, list_args, revoke_args;
  auto* token = app.add_subcommand(
      "token", "Console/API tokens (stored hashed by the controller; docs/access.md)");
  token->require_subcommand(1);
  auto* create = token->add_subcommand(
      "create", "Create a token and print it once (the controller keeps only its SHA-256)");
  AddCommon(create, &create_args.common);
  create->add_option("--role", create_args.role, "viewer or operator")
      ->required()
      ->check(CLI::IsMember({"viewer", "operator"}));
  create->add_option("--team", create_args.team,
                     "team the token acts for (the controller's team policy applies)");
  create->add_option("--expires", create_args.expires, "lifetime, e.g. 30d or 12h (default: none)");
  create->add_option("--name", create_args.name, "a label shown by `token list`");
  create->callback([exit_code] { *exit_code = TokenCreate(create_args); });

  auto* list = token->add_subcommand("list", "Tokens (never their secrets)");
  AddCommon(list, &list_args.common);
  list->callback([exit_code] { *exit_code = TokenList(list_args); });

  auto* revoke = token->add_subcommand(
      "revoke", "Revoke a token at once (console sessions opened with it end too)");
  AddCommon(revoke, &revoke_args.common);
  revoke->add_option("id", revoke_args.id, "token id (from `token list`)")->required();
  revoke->callback([exit_code] { *exit_code = TokenRevoke(revoke_args); });
}

void AddControllerCommands(CLI::App& app, int* exit_code) {
  AddTokenCommands(app, exit_code);
  static ControllerArgs faults_args, halt_args, resume_args;
  auto* faults = app.add_subcommand("faults", "Every active fault in the fleet (via a controller)");
  AddCommon(faults, &faults_args);
  faults->add_flag("--include-reverted", faults_args.include_reverted,
                   "also faults reverted recently, with why");
  faults->callback([exit_code] { *exit_code = Faults(faults_args); });

  auto* halt = app.add_subcommand(
      "halt",
      "Revert every fault on every agent attached to the controller and cancel every run (verdict "
      "ABORTED); no run starts until `faultline resume`. Idempotent.");
  AddCommon(halt, &halt_args);
  halt->add_option("--reason", halt_args.reason, "why, for the audit log");
  halt->callback([exit_code] { *exit_code = Halt(halt_args); });

  auto* resume = app.add_subcommand("resume", "Lift a halt: runs may start again");
  AddCommon(resume, &resume_args);
  resume->callback([exit_code] { *exit_code = Resume(resume_args); });
}

int RunViaController(const std::string& controller, const std::string& file,
                     const std::string& lease_ttl, const std::string& output,
                     const std::string& report_json, bool quiet, const ClientTlsArgs& tls) {
  // Ctrl-C/SIGTERM cancel the stream; the controller then aborts the run and reverts its faults.
  const BlockedSignals blocked({SIGINT, SIGTERM});

  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) {
    std::cerr << "faultline: cannot read " << file << "\n";
    return kExitUsage;
  }
  std::shared_ptr<v1::Controller::Stub> stub;
  if (int rc = Dial(controller, tls, &stub); rc != 0) return rc;
  v1::SubmitRunRequest req;
  req.set_experiment_yaml(text.str());
  req.set_file_name(file);
  req.set_lease_ttl_ms(static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(*ParseDuration(lease_ttl)).count()));
  grpc::ClientContext ctx;
  auto signals = std::make_unique<SignalThread>(blocked, [&ctx](int sig) {
    std::fprintf(stderr, "\nfaultline: %s received: asking the controller to abort the run\n",
                 sig == SIGINT ? "interrupt" : "terminate");
    ctx.TryCancel();
  });
  auto reader = stub->SubmitRun(&ctx, req);
  v1::RunEvent ev;
  std::optional<v1::RunSummary> finished;
  bool tty = isatty(STDERR_FILENO);
  while (reader->Read(&ev)) {
    if (ev.has_progress() && !quiet) {
      std::fprintf(stderr, "[%8.2fs] %s%-8s%s %s\n", ev.progress().elapsed_s(),
                   tty ? "\033[1m" : "", ev.progress().phase().c_str(), tty ? "\033[0m" : "",
                   ev.progress().message().c_str());
    } else if (ev.has_finished()) {
      finished = ev.finished();
    }
  }
  grpc::Status status = reader->Finish();
  signals.reset();  // later signals stay blocked and pending
  if (!finished) {
    if (status.error_code() == grpc::StatusCode::CANCELLED) {
      std::cerr << "faultline: run aborted; the controller reverts its faults\n";
      return 3;
    }
    if (status.ok()) status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream ended early");
    return Failed("SubmitRun", controller, status);
  }
  if (output == "json") {
    std::cout << finished->report_json();
  } else if (quiet) {
    // Only the verdict line, as for a direct run.
    report::ReportModel verdict;
    verdict.experiment = finished->experiment();
    verdict.run_id = finished->run_id();
    verdict.verdict = finished->verdict();
    verdict.reason = finished->reason();
    std::cout << report::RenderVerdictLine(verdict);
  } else {
    std::cout << finished->report_text();
  }
  if (!report_json.empty()) {
    if (Status s = WriteFileAtomically(report_json, finished->report_json(), 0644); !s.ok()) {
      std::cerr << "faultline: " << s.message() << "\n";
    }
  }
  return finished->exit_code();
}

int AgentsViaController(const std::string& controller, const std::string& output,
                        const ClientTlsArgs& tls) {
  std::shared_ptr<v1::Controller::Stub> stub;
  if (int rc = Dial(controller, tls, &stub); rc != 0) return rc;
  grpc::ClientContext ctx;
  SetDeadline(ctx, std::chrono::seconds(10));
  v1::ListAgentsRequest req;
  req.set_include_gone(true);
  v1::ListAgentsResponse resp;
  if (auto s = stub->ListAgents(&ctx, req, &resp); !s.ok()) {
    return Failed("ListAgents", controller, s);
  }
  if (output == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& a : resp.agents()) {
      std::map<std::string, std::string> labels(a.info().labels().begin(), a.info().labels().end());
      out.push_back({{"name", a.info().agent_id()},
                     {"live", a.live()},
                     {"peer", a.peer()},
                     {"labels", labels},
                     {"capabilities", std::vector<std::string>(a.info().capabilities().begin(),
                                                               a.info().capabilities().end())},
                     {"active_faults", a.info().active_faults()},
                     {"version", a.info().version()},
                     {"last_seen_unix_ms", a.last_seen_unix_ms()}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (resp.agents().empty()) std::cout << "no agent has attached to " << controller << "\n";
  for (const auto& a : resp.agents()) {
    std::string caps;
    for (const auto& c : a.info().capabilities()) caps += (caps.empty() ? "" : ",") + c;
    std::cout << a.info().agent_id() << "  " << (a.live() ? "LIVE" : "GONE") << "  " << a.peer()
              << "  v" << a.info().version() << "  labels{" << Labels(a.info().labels())
              << "}  capabilities[" << caps << "]\n";
  }
  return 0;
}

}  // namespace faultline::cli
