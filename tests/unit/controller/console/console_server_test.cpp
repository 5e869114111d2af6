// The console server over real HTTPS on 127.0.0.1:0 (docs/console-api.md): who may call what
// (client certificate, bearer token, session cookie; viewer vs operator), the security headers,
// the CSRF rule, body bounds and JSON errors, and the event stream: a halt from one operator
// reaches every open stream, and a run's end reaches its viewers. The run supervisor is the real
// one (the Halt RPC's path) over a fleet without agents.
#include "controller/console/console_server.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/certificates.h"
#include "controller/access/audit.h"
#include "controller/access/team_policy.h"
#include "controller/console/event_hub.h"
#include "controller/daemon/run_supervisor.h"
#include "tests/unit/controller/test_certificates.h"
#include "tests/unit/controller/unmatched_experiment.h"

namespace faultline::console {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

constexpr char kCsp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

// A run of this ends in ERROR at once: no agent carries role=db.
const std::string kExperiment = testing::UnmatchedExperiment("console-unit");

// The same experiment aimed at what team orders may target (the team policy below): its run
// starts (and ends in ERROR at once: the fleet has no agents).
std::string AllowedExperiment() {
  std::string yaml = kExperiment;
  yaml.replace(yaml.find("{role: db}"), 10, "{role: app}");
  return yaml;
}

// Team orders may target role=app only.
constexpr char kPolicy[] = R"(apiVersion: faultline/v1
kind: TeamPolicy
teams:
  orders:
    targets:
      - {role: app}
)";

// A fleet without agents: halts and fault lists fan out to nobody.
class EmptyFleet : public daemon::Fleet {
 public:
  engine::Inventory LiveInventory() override { return {}; }
  std::shared_ptr<engine::AgentConnection> Connect(const engine::AgentEndpoint&) override {
    return nullptr;
  }
  std::vector<std::string> LiveAgentIds() override { return {}; }
  std::vector<Result<v1::CommandResult>> Broadcast(const std::vector<std::string>&,
                                                   const v1::ControllerCommand&,
                                                   Duration) override {
    return {};
  }
  bool AwaitLive(const std::string&, Duration) override { return false; }
};

void WriteFile(const fs::path& path, const std::string& text) { std::ofstream(path) << text; }

// One event stream read on a thread of its own; the text so far can be awaited.
class StreamReader {
 public:
  StreamReader(std::function<std::unique_ptr<httplib::SSLClient>()> make, httplib::Headers headers)
      : client_(make()) {
    thread_ = std::thread([this, headers] {
      auto res = client_->Get(
          "/api/events", headers,
          [this](const httplib::Response& r) {
            std::lock_guard lock(mu_);
            content_type_ = r.get_header_value("Content-Type");
            return true;
          },
          [this](const char* data, size_t n) {
            std::lock_guard lock(mu_);
            text_.append(data, n);
            cv_.notify_all();
            return !stop_;
          });
      std::lock_guard lock(mu_);
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~StreamReader() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    client_->stop();
    thread_.join();
  }
  // True when the stream's text contains `needle` within `timeout` (a failure bound only).
  bool Await(const std::string& needle, Duration timeout = 30s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] {
      return text_.find(needle) != std::string::npos || ended_;
    }) && text_.find(needle) != std::string::npos;
  }
  std::string text() {
    std::lock_guard lock(mu_);
    return text_;
  }
  // The response's Content-Type (a browser's EventSource drops anything but text/event-stream).
  std::string content_type() {
    std::lock_guard lock(mu_);
    return content_type_;
  }

 private:
  std::unique_ptr<httplib::SSLClient> client_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
  std::string content_type_;
  bool stop_ = false;
  bool ended_ = false;
};

class ConsoleServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("console" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    testing::TestCertificates fleet, other;
    ASSERT_NO_FATAL_FAILURE(fleet.Init(dir_.string(), "fleet CA"));
    fleet.Issue("server",
                testing::TestCertificates::LoopbackServer("controller", Role::kController));
    fleet.Issue("op", CertificateRequest("alice", Role::kOperator));
    fleet.Issue("agent", CertificateRequest("some-agent", Role::kAgent));
    ASSERT_NO_FATAL_FAILURE(other.Init(dir_.string(), "another CA", "other-ca.pem"));
    other.Issue("stranger", CertificateRequest("mallory", Role::kOperator));

    ConsoleServerOptions o;
    o.listen = "127.0.0.1:0";
    o.cert_file = (dir_ / "server.pem").string();
    o.key_file = (dir_ / "server-key.pem").string();
    o.ca_file = (dir_ / "ca.pem").string();
    o.keepalive = 50ms;  // the readers get a chance to stop often
    o.auth.token = StaticTokens(
        {{"viewer-token", {.identity = "victor", .role = Role::kViewer, .team = "orders"}},
         {"operator-token",
          {.identity = "olga", .role = Role::kOperator, .team = "orders", .token_id = "t-olga"}}});
    // Token revocation as the access layer answers it (TokenAuthority::CheckStillValid).
    o.auth.still_valid = [this](const Principal& p) {
      std::lock_guard lock(audit_mu_);
      return revoked_.count(p.token_id) ? Unauthenticated("token " + p.token_id + " was revoked")
                                        : Status::Ok();
    };
    o.auth.audit = [this](const AuditRecord& r) {
      std::lock_guard lock(audit_mu_);
      audit_.push_back(r);
    };
    console_ = std::make_unique<ConsoleServer>(o);
    WriteFile(dir_ / "policy.yaml", kPolicy);
    policy_ = std::make_unique<access::PolicyFile>((dir_ / "policy.yaml").string());
    ASSERT_TRUE(policy_->Reload().ok());
    auto audit_store = store::OpenRunStore("sqlite://" + (dir_ / "audit.db").string());
    ASSERT_TRUE(audit_store.ok()) << audit_store.status().ToString();
    audit_store_ = std::move(*audit_store);
    audit_log_ = std::make_unique<access::AuditLog>(audit_store_.get());
    daemon::RunSupervisorOptions so;
    so.observer = &console_->observer();
    so.policy = policy_.get();
    so.audit = audit_log_.get();
    so.command_probe_allowlist = {"true"};
    supervisor_ = std::make_unique<daemon::RunSupervisor>(fleet_, so);
    ConsoleBackend backend;
    backend.supervisor = supervisor_.get();
    Status started = console_->Start(backend);
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  void TearDown() override {
    console_->Stop();
    supervisor_.reset();
    console_.reset();
    audit_log_.reset();
    audit_store_.reset();
    fs::remove_all(dir_);
  }

  // A client that trusts the fleet CA; with `cert` ("op", "agent", "stranger") it presents
  // that client certificate.
  std::unique_ptr<httplib::SSLClient> Client(const std::string& cert = "") {
    std::unique_ptr<httplib::SSLClient> c;
    if (cert.empty()) {
      c = std::make_unique<httplib::SSLClient>("127.0.0.1", console_->port());
    } else {
      c = std::make_unique<httplib::SSLClient>("127.0.0.1", console_->port(),
                                               (dir_ / (cert + ".pem")).string(),
                                               (dir_ / (cert + "-key.pem")).string());
    }
    c->set_ca_cert_path((dir_ / "ca.pem").string().c_str());
    c->enable_server_certificate_verification(true);
    c->set_read_timeout(30, 0);
    return c;
  }
  static httplib::Headers Bearer(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
  }
  static httplib::Headers Console(httplib::Headers h = {}) {
    h.emplace("X-Faultline-Console", "1");
    return h;
  }
  static std::string Error(const httplib::Result& res) {
    auto j = json::parse(res->body, nullptr, false);
    return j.is_object() && j.contains("error") ? j["error"].get<std::string>() : "<not JSON>";
  }

  // POST /api/runs {"experiment": yaml} with the console's header; `auth` says who.
  httplib::Result StartRun(const std::string& yaml, httplib::Headers auth) {
    return Client()->Post("/api/runs", Console(std::move(auth)), json{{"experiment", yaml}}.dump(),
                          "application/json");
  }
  // The runs this process knows (RUNNING or finished).
  int RunsKnown() {
    auto runs = supervisor_->ListRuns("", 0);
    return runs.ok() ? runs->runs_size() : -1;
  }
  // The access layer's records of `action`, newest first.
  std::vector<store::AuditRecord> Audited(const std::string& action) {
    audit_log_->Flush();
    std::vector<store::AuditRecord> out;
    auto all = audit_store_->ListAudit(0);
    if (all.ok()) {
      for (auto& r : *all)
        if (r.action == action) out.push_back(r);
    }
    return out;
  }

  fs::path dir_;
  EmptyFleet fleet_;
  std::unique_ptr<access::PolicyFile> policy_;
  std::unique_ptr<store::RunStore> audit_store_;
  std::unique_ptr<access::AuditLog> audit_log_;
  std::unique_ptr<ConsoleServer> console_;
  std::unique_ptr<daemon::RunSupervisor> supervisor_;
  std::mutex audit_mu_;
  std::vector<AuditRecord> audit_;
  std::set<std::string> revoked_;  // guarded by audit_mu_
};

TEST_F(ConsoleServerTest, NoCertificateAndNoTokenIsUnauthorized) {
  auto res = Client()->Get("/api/me");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 401);
  EXPECT_NE(Error(res).find("not authenticated"), std::string::npos) << res->body;
  auto events = Client()->Get("/api/events");
  ASSERT_TRUE(events);
  EXPECT_EQ(events->status, 401);
  // A wrong token is refused too.
  auto wrong = Client()->Get("/api/me", Bearer("guess"));
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
}

TEST_F(ConsoleServerTest, CertificateAndTokenIdentifyTheCaller) {
  auto by_cert = Client("op")->Get("/api/me");
  ASSERT_TRUE(by_cert);
  ASSERT_EQ(by_cert->status, 200) << by_cert->body;
  auto me = json::parse(by_cert->body);
  EXPECT_EQ(me["identity"], "alice");
  EXPECT_EQ(me["role"], "operator");
  EXPECT_EQ(me["source"], "certificate");
  auto by_token = Client()->Get("/api/me", Bearer("viewer-token"));
  ASSERT_TRUE(by_token);
  ASSERT_EQ(by_token->status, 200);
  EXPECT_EQ(json::parse(by_token->body)["role"], "viewer");
  EXPECT_EQ(json::parse(by_token->body)["source"], "token");
  // A verified certificate without a console role (an agent's) is no login.
  auto agent = Client("agent")->Get("/api/me");
  ASSERT_TRUE(agent);
  EXPECT_EQ(agent->status, 401);
  EXPECT_NE(Error(agent).find("no console role"), std::string::npos) << agent->body;
}

// The console maps a certificate as the gRPC API does (access::PrincipalFromPeer): the same
// role and team rules, so a team SAN the API refuses is no console login either.
TEST(CertificatePrincipalTest, SameRulesAsTheGrpcApi) {
  auto ok = CertificatePrincipal({"carol", {RoleUri(Role::kOperator), TeamUri("orders")}});
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->identity, "carol");
  EXPECT_EQ(ok->role, Role::kOperator);
  EXPECT_EQ(ok->team, "orders");
  EXPECT_EQ(ok->source, "certificate");
  auto two_teams = CertificatePrincipal(
      {"carol", {RoleUri(Role::kOperator), TeamUri("orders"), TeamUri("payments")}});
  EXPECT_EQ(two_teams.status().code(), StatusCode::kUnauthenticated);
  auto bad_team = CertificatePrincipal({"carol", {RoleUri(Role::kViewer), TeamUri("a b")}});
  EXPECT_EQ(bad_team.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(bad_team.status().message().find("not a team name"), std::string::npos)
      << bad_team.status().message();
  auto controller = CertificatePrincipal({"ctl", {RoleUri(Role::kController)}});
  EXPECT_NE(controller.status().message().find("no console role"), std::string::npos);
}

TEST_F(ConsoleServerTest, CertificateFromAnotherCaFailsTheHandshake) {
  auto res = Client("stranger")->Get("/api/me");
  EXPECT_FALSE(res) << "a certificate the fleet CA did not sign must not connect";
}

TEST_F(ConsoleServerTest, EveryResponseCarriesTheSecurityHeaders) {
  auto c = Client();
  for (const char* path : {"/", "/api/me", "/api/nothing-here"}) {
    auto res = c->Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->get_header_value("Content-Security-Policy"), kCsp) << path;
    EXPECT_EQ(res->get_header_value("X-Content-Type-Options"), "nosniff") << path;
    EXPECT_EQ(res->get_header_value("Referrer-Policy"), "no-referrer") << path;
    EXPECT_EQ(res->get_header_value("Cache-Control"), "no-store") << path;
  }
  auto page = c->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
}

TEST_F(ConsoleServerTest, ViewerMayNotHaltAndIsToldWhy) {
  auto res = Client()->Post("/api/halt", Console(Bearer("viewer-token")), R"({"reason":"try"})",
                            "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);
  EXPECT_EQ(Error(res), "role viewer may not halt the fleet");
  EXPECT_FALSE(supervisor_->halted());
  std::lock_guard lock(audit_mu_);
  ASSERT_FALSE(audit_.empty());
  EXPECT_EQ(audit_.back().action, "halt");
  EXPECT_FALSE(audit_.back().allowed);
  EXPECT_EQ(audit_.back().principal.identity, "victor");
}

TEST_F(ConsoleServerTest, StateChangesNeedTheConsoleHeaderAndJson) {
  auto c = Client("op");
  auto no_header = c->Post("/api/halt", R"({"reason":"x"})", "application/json");
  ASSERT_TRUE(no_header);
  EXPECT_EQ(no_header->status, 403);
  EXPECT_NE(Error(no_header).find("X-Faultline-Console"), std::string::npos);
  auto form = c->Post("/api/halt", Console(), "reason=x", "application/x-www-form-urlencoded");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 403);
  EXPECT_NE(Error(form).find("application/json"), std::string::npos);
  EXPECT_FALSE(supervisor_->halted()) << "a refused request must not halt";
}

TEST_F(ConsoleServerTest, BadBodiesAre400Or413NamingTheField) {
  auto c = Client("op");
  auto broken = c->Post("/api/halt", Console(), "{", "application/json");
  ASSERT_TRUE(broken);
  EXPECT_EQ(broken->status, 400);
  EXPECT_NE(Error(broken).find("body"), std::string::npos) << broken->body;
  auto wrong_type = c->Post("/api/halt", Console(), R"({"reason":5})", "application/json");
  ASSERT_TRUE(wrong_type);
  EXPECT_EQ(wrong_type->status, 400);
  EXPECT_NE(Error(wrong_type).find("reason"), std::string::npos) << wrong_type->body;
  std::string big = R"({"reason":")" + std::string(20000, 'x') + R"("})";
  auto oversized = c->Post("/api/halt", Console(), big, "application/json");
  ASSERT_TRUE(oversized);
  EXPECT_EQ(oversized->status, 413);
  EXPECT_NE(Error(oversized).find("body"), std::string::npos) << oversized->body;
  EXPECT_EQ(oversized->get_header_value("Content-Security-Policy"), kCsp);
  EXPECT_FALSE(supervisor_->halted());
  auto limit = c->Get("/api/runs?limit=501");
  ASSERT_TRUE(limit);
  EXPECT_EQ(limit->status, 400);
  EXPECT_NE(Error(limit).find("limit"), std::string::npos);
}

TEST_F(ConsoleServerTest, SessionCookieFromTokenLogin) {
  auto c = Client();
  auto bad = c->Post("/api/session", Console(), R"({"token":"nope"})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 401);
  auto login =
      c->Post("/api/session", Console(), R"({"token":"operator-token"})", "application/json");
  ASSERT_TRUE(login);
  ASSERT_EQ(login->status, 204) << login->body;
  const std::string cookie = login->get_header_value("Set-Cookie");
  for (const char* attr : {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"}) {
    EXPECT_NE(cookie.find(attr), std::string::npos) << cookie;
  }
  const std::string pair = cookie.substr(0, cookie.find(';'));
  ASSERT_EQ(pair.rfind("fl_session=", 0), 0u);
  EXPECT_EQ(pair.find("olga"), std::string::npos) << "the cookie is opaque";
  auto me = c->Get("/api/me", {{"Cookie", pair}});
  ASSERT_TRUE(me);
  ASSERT_EQ(me->status, 200);
  EXPECT_EQ(json::parse(me->body)["identity"], "olga");
  auto out = c->Delete("/api/session", Console({{"Cookie", pair}}), "", "application/json");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->status, 204);
  auto after = c->Get("/api/me", {{"Cookie", pair}});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 401);
}

TEST_F(ConsoleServerTest, RevokingTheTokenEndsItsSessions) {
  auto c = Client();
  auto login =
      c->Post("/api/session", Console(), R"({"token":"operator-token"})", "application/json");
  ASSERT_TRUE(login);
  ASSERT_EQ(login->status, 204) << login->body;
  const std::string cookie = login->get_header_value("Set-Cookie");
  const std::string pair = cookie.substr(0, cookie.find(';'));
  auto before = c->Get("/api/me", {{"Cookie", pair}});
  ASSERT_TRUE(before);
  ASSERT_EQ(before->status, 200) << "control: the session works while the token is valid";
  {
    std::lock_guard lock(audit_mu_);
    revoked_.insert("t-olga");
  }
  auto after = c->Get("/api/me", {{"Cookie", pair}});
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 401);
  EXPECT_NE(Error(after).find("no longer valid"), std::string::npos) << after->body;
}

TEST_F(ConsoleServerTest, OperatorHaltReachesEveryOpenStreamAndLatches) {
  StreamReader viewer([this] { return Client(); }, Bearer("viewer-token"));
  StreamReader op([this] { return Client("op"); }, {});
  ASSERT_TRUE(viewer.Await("event: hello")) << viewer.text();
  ASSERT_TRUE(op.Await("event: hello")) << op.text();
  EXPECT_EQ(viewer.content_type(), "text/event-stream");
  EXPECT_NE(viewer.text().find("\"halted\":false"), std::string::npos) << viewer.text();

  auto res = Client("op")->Post("/api/halt", Console(), R"({"reason":"game day over"})",
                                "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  auto halt = json::parse(res->body);
  EXPECT_TRUE(halt["halted"].get<bool>());
  EXPECT_EQ(halt["by"], "alice");
  EXPECT_TRUE(supervisor_->halted());
  for (StreamReader* s : {&viewer, &op}) {
    EXPECT_TRUE(s->Await("event: halt\ndata: {\"at\"")) << s->text();
    EXPECT_NE(s->text().find("\"halted\":true"), std::string::npos) << s->text();
  }
  // The latch: no run starts until resume.
  daemon::RunRequest run;
  run.experiment_yaml = kExperiment;
  auto refused = supervisor_->StartRun(run);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  auto get = Client()->Get("/api/halt", Bearer("viewer-token"));
  ASSERT_TRUE(get);
  EXPECT_TRUE(json::parse(get->body)["halted"].get<bool>());

  auto resumed =
      Client()->Post("/api/resume", Console(Bearer("operator-token")), "{}", "application/json");
  ASSERT_TRUE(resumed);
  ASSERT_EQ(resumed->status, 200);
  EXPECT_FALSE(json::parse(resumed->body)["halted"].get<bool>());
  EXPECT_TRUE(viewer.Await("\"halted\":false,\"reason\":\"game day over")) << viewer.text();
  EXPECT_TRUE(supervisor_->StartRun(run).ok());
}

TEST_F(ConsoleServerTest, RunStateAndRunEndReachTheStream) {
  StreamReader viewer([this] { return Client(); }, Bearer("viewer-token"));
  ASSERT_TRUE(viewer.Await("event: hello"));
  daemon::RunRequest run;
  run.experiment_yaml = kExperiment;
  auto id = supervisor_->StartRun(run);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_TRUE(
      viewer.Await("event: run_end\ndata: {\"run_id\":\"" + *id + "\",\"verdict\":\"ERROR\""))
      << viewer.text();
  EXPECT_TRUE(viewer.Await("event: timeline\ndata: {\"run_id\":\"" + *id)) << viewer.text();
  EXPECT_NE(viewer.text().find("<svg"), std::string::npos);
  // A viewer that (re)connects after the end learns how it ended: the hello's recent runs.
  StreamReader late([this] { return Client(); }, Bearer("viewer-token"));
  ASSERT_TRUE(late.Await("event: hello")) << late.text();
  ASSERT_TRUE(late.Await("\n\n")) << late.text();
  const std::string hello = late.text().substr(0, late.text().find("\n\n"));
  auto data = json::parse(hello.substr(hello.find("data: ") + 6), nullptr, false);
  ASSERT_TRUE(data.is_object()) << hello;
  EXPECT_TRUE(data["active"].empty()) << hello;
  ASSERT_EQ(data["recent"].size(), 1u) << hello;
  EXPECT_EQ(data["recent"][0]["run_id"], *id);
  EXPECT_EQ(data["recent"][0]["verdict"], "ERROR");
  EXPECT_EQ(data["recent"][0]["phase"], "done");
  // The finished run's timeline is the report's renderer.
  auto svg = Client()->Get("/api/runs/" + *id + "/timeline.svg", Bearer("viewer-token"));
  ASSERT_TRUE(svg);
  ASSERT_EQ(svg->status, 200);
  EXPECT_EQ(svg->get_header_value("Content-Type"), "image/svg+xml");
  EXPECT_NE(svg->body.find("id=\"timeline\""), std::string::npos);
}

TEST_F(ConsoleServerTest, OperatorStartsARunWithinTheTeamPolicy) {
  auto res = StartRun(AllowedExperiment(), Bearer("operator-token"));
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  const std::string id = json::parse(res->body)["run_id"].get<std::string>();
  EXPECT_FALSE(id.empty());
  auto run = supervisor_->GetRun(id);
  ASSERT_TRUE(run.ok()) << "the run is the supervisor's: " << run.status().ToString();
  EXPECT_EQ(run->experiment(), "console-unit");
  auto audited = Audited("run.submit");
  ASSERT_EQ(audited.size(), 1u);
  EXPECT_EQ(audited[0].outcome, "OK");
  EXPECT_EQ(audited[0].identity, "olga");
  EXPECT_EQ(audited[0].team, "orders");
  EXPECT_NE(audited[0].detail.find("run=" + id), std::string::npos) << audited[0].detail;
}

TEST_F(ConsoleServerTest, TeamPolicyRefusesTargetsOutsideIt) {
  auto res = StartRun(kExperiment, Bearer("operator-token"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403) << res->body;
  const std::string error = Error(res);
  EXPECT_NE(error.find("team policy"), std::string::npos) << error;
  EXPECT_NE(error.find("targets"), std::string::npos) << error;
  EXPECT_NE(error.find("{role: db}"), std::string::npos) << error;
  EXPECT_EQ(RunsKnown(), 0) << "nothing started";
  auto audited = Audited("run.submit");
  ASSERT_EQ(audited.size(), 1u);
  EXPECT_EQ(audited[0].outcome, "PERMISSION_DENIED");
  EXPECT_EQ(audited[0].identity, "olga");
  // The same rule for an operator without a team (the certificate "alice"): under a team policy
  // only a team starts runs, whatever it targets.
  auto no_team = Client("op")->Post(
      "/api/runs", Console(), json{{"experiment", AllowedExperiment()}}.dump(), "application/json");
  ASSERT_TRUE(no_team);
  EXPECT_EQ(no_team->status, 403) << no_team->body;
  EXPECT_NE(Error(no_team).find("has no team"), std::string::npos) << no_team->body;
  EXPECT_EQ(RunsKnown(), 0);
}

TEST_F(ConsoleServerTest, ViewerMayNotStartRuns) {
  auto res = StartRun(AllowedExperiment(), Bearer("viewer-token"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);
  EXPECT_EQ(Error(res), "role viewer may not start runs");
  EXPECT_EQ(RunsKnown(), 0);
  std::lock_guard lock(audit_mu_);
  ASSERT_FALSE(audit_.empty());
  EXPECT_EQ(audit_.back().action, "run.submit");
  EXPECT_FALSE(audit_.back().allowed);
  EXPECT_EQ(audit_.back().principal.identity, "victor");
}

TEST_F(ConsoleServerTest, InvalidExperimentIs400WithLineAndField) {
  std::string yaml = AllowedExperiment();
  yaml.replace(yaml.find("duration: 1m"), 12, "duration: soon");
  auto res = StartRun(yaml, Bearer("operator-token"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  // The parser's message: file:line:column and the field (the duration is on line 10).
  EXPECT_NE(Error(res).find("experiment:10:"), std::string::npos) << res->body;
  EXPECT_NE(Error(res).find("faults[0].duration"), std::string::npos) << res->body;
  EXPECT_EQ(RunsKnown(), 0);
  for (const char* body : {R"({})", R"({"experiment":5})", R"({"experiment":""})"}) {
    auto bad =
        Client()->Post("/api/runs", Console(Bearer("operator-token")), body, "application/json");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400) << body;
    EXPECT_NE(Error(bad).find("experiment"), std::string::npos) << bad->body;
  }
  // Without the console's header (a cross-site form) nothing is parsed or started.
  auto csrf = Client()->Post("/api/runs", Bearer("operator-token"),
                             json{{"experiment", AllowedExperiment()}}.dump(), "application/json");
  ASSERT_TRUE(csrf);
  EXPECT_EQ(csrf->status, 403);
  EXPECT_EQ(RunsKnown(), 0);
}

TEST_F(ConsoleServerTest, NoRunStartsWhileHalted) {
  supervisor_->HaltAll("drill");
  auto res = StartRun(AllowedExperiment(), Bearer("operator-token"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 409) << res->body;
  EXPECT_NE(Error(res).find("halted"), std::string::npos);
  supervisor_->ResumeAll();
  auto again = StartRun(AllowedExperiment(), Bearer("operator-token"));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 201) << "control: it starts once resumed: " << again->body;
}

TEST_F(ConsoleServerTest, StreamsAreBoundedAndSlowStreamsAreDropped) {
  EventHub hub(2, 3);
  auto a = hub.Subscribe();
  auto b = hub.Subscribe();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(hub.Subscribe().status().code(), StatusCode::kResourceExhausted);
  // `a` reads, `b` never does: publishing never blocks, and `b` is dropped once full.
  for (int i = 0; i < 10; ++i) {
    hub.Publish("run", "{\"i\":" + std::to_string(i) + "}");
    auto got = (*a)->Next(0ms);
    ASSERT_TRUE(got && !got->empty());
  }
  EXPECT_EQ(hub.open_streams(), 1u);
  EXPECT_EQ(hub.dropped_streams(), 1u);
  EXPECT_FALSE((*b)->Next(0ms).has_value()) << "a dropped stream ends";
  EXPECT_TRUE(hub.Subscribe().ok()) << "its place is free again";
}

}  // namespace
}  // namespace faultline::console
