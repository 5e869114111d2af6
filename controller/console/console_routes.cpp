// The endpoints of docs/console-api.md, each a small function over the controller's state.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "controller/access/principal.h"
#include "controller/console/assets.h"
#include "controller/console/console_json.h"
#include "controller/console/console_server_internal.h"
#include "controller/daemon/run_supervisor.h"
#include "controller/report/stored_report.h"
#include "controller/report/timeline_svg.h"
#include "controller/report/trend_report.h"

namespace faultline::console {

using nlohmann::json;

namespace {

constexpr char kSvg[] = "image/svg+xml";

Reply Json(int status, std::string body) { return Reply{status, std::move(body)}; }

// A string field of the JSON body, bounded; INVALID_ARGUMENT naming the field.
Result<std::string> StringField(const json& body, const std::string& field, size_t min_chars,
                                size_t max_chars) {
  auto it = body.find(field);
  if (it == body.end() || !it->is_string()) {
    return InvalidArgument(field + ": required, a string");
  }
  const std::string& text = it->get_ref<const std::string&>();
  // Characters, not bytes: count UTF-8 lead bytes.
  size_t chars = std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  });
  if (chars < min_chars || chars > max_chars) {
    return InvalidArgument(field + ": " + std::to_string(min_chars) + " to " +
                           std::to_string(max_chars) + " characters");
  }
  return text;
}

std::string SessionCookie(const std::string& value, bool clear) {
  return "fl_session=" + value + "; Secure; HttpOnly; SameSite=Strict; Path=/" +
         (clear ? "; Max-Age=0" : "");
}

}  // namespace

void ConsoleServer::Impl::RegisterRoutes() {
  daemon::RunSupervisor& sup = *backend.supervisor;
  store::RunStore* store = backend.store;

  // The page and its assets: public (they carry no data).
  auto asset = [](Call& c, httplib::Response&) -> Reply {
    const ConsoleAsset* a = FindConsoleAsset(c.req.path);
    if (!a) return ErrorReply(404, "not found: " + c.req.path);
    return Reply{200, std::string(a->body), std::string(a->content_type)};
  };
  Route("GET", "/", Access::kPublic, "page", "", asset);
  Route("GET", R"(/assets/[A-Za-z0-9._/-]+)", Access::kPublic, "asset", "", asset);

  // Sessions.
  Route("POST", "/api/session", Access::kPublic, "login", "",
        [this](Call& c, httplib::Response& res) {
          auto token = StringField(c.body, "token", 1, 4096);
          if (!token.ok()) return StatusReply(token.status());
          Result<Principal> who = options.auth.token
                                      ? options.auth.token(*token)
                                      : Result<Principal>(Status(StatusCode::kUnauthenticated,
                                                                 "tokens are not enabled"));
          if (!who.ok()) {
            Audit("login", "", {}, c.peer, false, who.status().message());
            return ErrorReply(401, "unknown or revoked token");
          }
          auto id = sessions.Create(*who);
          if (!id.ok()) return StatusReply(id.status());
          res.set_header("Set-Cookie", SessionCookie(*id, false));
          Audit("login", "", *who, c.peer, true, "session created");
          return Reply{204, ""};
        });
  Route("DELETE", "/api/session", Access::kAuthenticated, "logout", "",
        [this](Call& c, httplib::Response& res) {
          std::string header = c.req.get_header_value("Cookie");
          size_t at = header.find("fl_session=");
          if (at != std::string::npos) {
            size_t end = header.find(';', at);
            sessions.Remove(header.substr(at + 11, end == std::string::npos ? end : end - at - 11));
          }
          res.set_header("Set-Cookie", SessionCookie("", true));
          Audit("logout", "", c.who, c.peer, true, "");
          return Reply{204, ""};
        });
  Route("GET", "/api/me", Access::kAuthenticated, "me", "", [](Call& c, httplib::Response&) {
    return Json(200, json{{"identity", c.who.identity},
                          {"role", RoleName(c.who.role)},
                          {"team", c.who.team},
                          {"source", c.who.source}}
                         .dump());
  });

  // Live state.
  Route("GET", "/api/events", Access::kViewer, "events", "",
        [this](Call& c, httplib::Response& res) {
          ServeEvents(c, res);
          // The stream's content provider (text/event-stream) or its 503 is already in `res`;
          // setting a body here would replace it (and its type) with an empty JSON answer.
          Reply prepared{res.status == 503 ? 503 : 200, ""};
          prepared.prepared = true;
          return prepared;
        });
  Route("GET", "/api/runs/active", Access::kViewer, "runs", "",
        [this](Call&, httplib::Response&) { return Json(200, live.ActiveJson()); });
  Route("GET", "/api/fleet", Access::kViewer, "fleet", "",
        [this](Call&, httplib::Response&) { return Json(200, FleetNow()); });

  // Halt and resume: the Halt/Resume RPCs' path (RunSupervisor::HaltAll / ResumeAll).
  Route("GET", "/api/halt", Access::kViewer, "halt", "",
        [this](Call&, httplib::Response&) { return Json(200, HaltJson(live.Halt())); });
  Route("POST", "/api/halt", Access::kOperator, "halt", "halt the fleet",
        [this, &sup](Call& c, httplib::Response&) {
          auto reason = StringField(c.body, "reason", 1, 500);
          if (!reason.ok()) return StatusReply(reason.status());
          live.NoteHaltBy(c.who.identity);
          daemon::HaltOutcome out = sup.HaltAll(*reason + " (console, " + c.who.identity + ")");
          Audit("halt", "", c.who, c.peer, true,
                fmt::format("{}: {} fault(s) reverted on {} agent(s), {} failed", *reason,
                            out.faults_reverted, out.agents, out.failed.size()));
          return Json(200, HaltJson(live.Halt()));
        });
  Route("POST", "/api/resume", Access::kOperator, "resume", "resume the fleet",
        [this, &sup](Call& c, httplib::Response&) {
          bool was = sup.ResumeAll();
          Audit("resume", "", c.who, c.peer, true, was ? "halt lifted" : "was not halted");
          return Json(200, HaltJson(live.Halt()));
        });

  // History.
  Route(
      "GET", "/api/runs", Access::kViewer, "runs", "", [store, &sup](Call& c, httplib::Response&) {
        int limit = 100;
        if (c.req.has_param("limit")) {
          const std::string v = c.req.get_param_value("limit");
          if (v.empty() || v.size() > 4 || v.find_first_not_of("0123456789") != std::string::npos ||
              std::stoi(v) < 1 || std::stoi(v) > 500) {
            return ErrorReply(400, "limit: a number from 1 to 500");
          }
          limit = std::stoi(v);
        }
        const std::string experiment = c.req.get_param_value("experiment");
        const std::string verdict = c.req.get_param_value("verdict");
        std::string out = "[";
        int n = 0;
        auto add = [&](const store::RunRecord& r) {
          if (n >= limit || (!verdict.empty() && r.verdict != verdict)) return;
          out += (n++ ? "," : "") + RunRowJson(r);
        };
        if (store) {
          store::RunFilter filter;
          filter.limit = verdict.empty() ? limit : 5000;
          filter.experiment = experiment;
          filter.with_report = true;
          auto runs = store->ListRuns(filter);
          if (!runs.ok()) return StatusReply(runs.status());
          for (const auto& r : *runs) add(r);
        } else {
          auto runs = sup.ListRuns(experiment, 0);
          if (!runs.ok()) return StatusReply(runs.status());
          for (const auto& s : runs->runs()) {
            auto full = sup.GetRun(s.run_id());
            store::RunRecord r;
            r.id = s.run_id();
            r.experiment = s.experiment();
            r.verdict = s.verdict() == "RUNNING" ? "" : s.verdict();
            r.started_unix_ms = s.started_unix_ms();
            if (full.ok()) r.report_json = full->report_json();
            add(r);
          }
        }
        return Json(200, out + "]");
      });
  // Starting a run: the SubmitRun RPC's path (RunSupervisor::StartRun with the caller as
  // principal), so the parser, the halt latch, the command-probe allowlist and the team policy
  // apply as for the CLI, and StartRun audits the submission with its outcome ("run.submit").
  Route("POST", "/api/runs", Access::kOperator, "run.submit", "start runs",
        [this, &sup](Call& c, httplib::Response&) {
          auto yaml = StringField(c.body, "experiment", 1, options.max_body);
          if (!yaml.ok()) {
            Audit("run.submit", "", c.who, c.peer, false, yaml.status().message());
            return StatusReply(yaml.status());
          }
          daemon::RunRequest run;
          run.experiment_yaml = *yaml;
          run.file_name = "experiment";  // errors read "experiment:LINE:COLUMN: field: ..."
          run.source = "console";
          run.principal = c.who;  // the access layer's principal, peer included (Route)
          Result<std::string> started = sup.StartRun(std::move(run));
          if (!started.ok()) return StatusReply(started.status());
          return Json(201, json{{"run_id", *started}}.dump());
        });
  Route("GET", R"(/api/runs/([a-z0-9]{1,64}))", Access::kViewer, "report", "",
        [store, &sup](Call& c, httplib::Response&) {
          const std::string id = c.req.matches[1];
          if (store) {
            auto stored = store->GetRun(id);
            if (!stored.ok()) return StatusReply(stored.status());
            auto doc = report::RenderStoredJson(*stored);
            if (!doc.ok()) return StatusReply(doc.status());
            return Json(200, *doc);
          }
          auto run = sup.GetRun(id);
          if (!run.ok()) return StatusReply(run.status());
          if (run->report_json().empty())
            return ErrorReply(409, "run " + id + " has no report yet");
          return Json(200, run->report_json());
        });
  Route("GET", R"(/api/runs/([a-z0-9]{1,64})/timeline\.svg)", Access::kViewer, "timeline", "",
        [this, store, &sup](Call& c, httplib::Response&) {
          const std::string id = c.req.matches[1];
          if (auto svg = live.TimelineSvg(id)) return Reply{200, *svg, kSvg};
          Result<report::ReportModel> model = NotFound("no run " + id);
          if (store) {
            auto stored = store->GetRun(id);
            if (!stored.ok()) return StatusReply(stored.status());
            model = report::LoadStoredReport(*stored);
          } else if (auto run = sup.GetRun(id); run.ok()) {
            model = report::ParseReportJson(run->report_json(), "run " + id);
          }
          if (!model.ok()) return StatusReply(model.status());
          return Reply{200, report::RenderTimelineSvg(*model), kSvg};
        });
  Route("POST", R"(/api/runs/([a-z0-9]{1,64})/annotations)", Access::kOperator, "annotate",
        "annotate runs", [this, &sup](Call& c, httplib::Response&) {
          const std::string id = c.req.matches[1];
          auto text = StringField(c.body, "text", 1, 500);
          if (!text.ok()) return StatusReply(text.status());
          auto note = sup.AnnotateRun(id, c.who.identity, *text, c.who.identity);
          Audit("annotate", id, c.who, c.peer, note.ok(),
                note.ok() ? *text : note.status().message());
          if (!note.ok()) return StatusReply(note.status());
          live.AddAnnotation(id, note->author(), note->text(), note->at_unix_ms());
          return Json(201, json{{"run_id", id},
                                {"author", note->author()},
                                {"text", note->text()},
                                {"at", report::IsoTime(note->at_unix_ms())}}
                               .dump());
        });

  // Trend of time to recover (history --trend's model and chart).
  auto trend_of = [store](Call& c) -> Result<report::Trend> {
    const std::string experiment = c.req.get_param_value("experiment");
    if (experiment.empty()) return InvalidArgument("experiment: required");
    if (!store) return FailedPrecondition("this controller has no store (--store none)");
    store::RunFilter filter;
    filter.limit = 500;
    filter.experiment = experiment;
    filter.state = store::RunState::kFinished;
    filter.with_report = true;
    auto runs = store->ListRuns(filter);
    if (!runs.ok()) return runs.status();
    std::vector<report::ReportModel> models;
    for (auto it = runs->rbegin(); it != runs->rend(); ++it) {
      auto m = report::LoadStoredReport(store::StoredRun{*it, {}});
      if (m.ok()) models.push_back(std::move(*m));
    }
    return report::BuildTrend(experiment, models);
  };
  Route("GET", "/api/trend", Access::kViewer, "trend", "", [trend_of](Call& c, httplib::Response&) {
    auto t = trend_of(c);
    if (!t.ok()) return StatusReply(t.status());
    return Json(200, TrendJson(*t, c.req.get_param_value("objective")));
  });
  Route("GET", R"(/api/trend\.svg)", Access::kViewer, "trend", "",
        [trend_of](Call& c, httplib::Response&) {
          auto t = trend_of(c);
          if (!t.ok()) return StatusReply(t.status());
          const std::string objective = c.req.get_param_value("objective");
          for (const auto& s : t->series) {
            if (objective.empty() || s.objective == objective) {
              return Reply{200, report::RenderTrendSvg(s), kSvg};
            }
          }
          return ErrorReply(404, "objective: no recorded run of " + t->experiment +
                                     (objective.empty() ? "" : " measures " + objective));
        });

  // Schedules.
  Route("GET", "/api/schedules", Access::kViewer, "schedules", "",
        [store, &sup](Call&, httplib::Response&) {
          if (!store) return Json(200, "[]");
          auto list = sup.ListSchedules();
          if (!list.ok()) return StatusReply(list.status());
          std::string out = "[";
          const int64_t now = SystemClock::Instance().WallUnixMs();
          for (const auto& s : *list) {
            auto firings = sup.ListFirings(s.name, 50);
            out += (out.size() > 1 ? "," : "") +
                   ScheduleJson(s, firings.ok() ? *firings : std::vector<store::Firing>{}, now);
          }
          return Json(200, out + "]");
        });
  for (bool pause : {true, false}) {
    const std::string verb = pause ? "pause" : "resume";
    Route("POST", R"(/api/schedules/([a-z0-9][a-z0-9-]{0,62})/)" + verb, Access::kOperator,
          verb + "-schedule", verb + " schedules",
          [this, &sup, pause, verb](Call& c, httplib::Response&) {
            const std::string name = c.req.matches[1];
            Status s = sup.PauseSchedule(name, pause);
            Audit(verb + "-schedule", name, c.who, c.peer, s.ok(), s.ok() ? "" : s.message());
            if (!s.ok()) return StatusReply(s);
            return Reply{204, ""};
          });
  }
}

}  // namespace faultline::console
