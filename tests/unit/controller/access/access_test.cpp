// controller/access: roles, tokens (against a real SQLite store), the team policy's rules (each
// with its negative control) and the audit log.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "controller/access/audit.h"
#include "controller/access/principal.h"
#include "controller/access/team_policy.h"
#include "controller/access/token_authority.h"
#include "controller/experiment/parser.h"

namespace faultline::access {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("access_t" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto s = store::OpenRunStore("sqlite://" + (dir_ / "h.db").string(), &clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  FakeClock clock_;
  fs::path dir_;
  std::unique_ptr<store::RunStore> store_;
};

Principal Who(Role role, std::string team) {
  Principal p;
  p.identity = "alice";
  p.role = role;
  p.team = std::move(team);
  p.source = "certificate";
  p.peer = "ipv4:127.0.0.1:5";
  return p;
}

// ---- roles ----

TEST(PrincipalTest, ViewerMayReadButNotOperate) {
  EXPECT_TRUE(RequireRole(Who(Role::kViewer, ""), Role::kViewer, "read").ok());
  Status s = RequireRole(Who(Role::kViewer, ""), Role::kOperator, "halt the fleet");
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "role viewer may not halt the fleet (needs operator)");
  EXPECT_TRUE(RequireRole(Who(Role::kOperator, ""), Role::kOperator, "halt").ok());
  // Controller and agent certificates are neither.
  EXPECT_FALSE(RequireRole(Who(Role::kAgent, ""), Role::kViewer, "read").ok());
}

TEST(PrincipalTest, PeerCertificatesMapToPrincipals) {
  PeerIdentity peer;
  peer.authenticated = true;
  peer.name = "bob";
  peer.role = Role::kViewer;
  peer.team = "orders";
  peer.address = "ipv4:10.0.0.1:4";
  auto p = PrincipalFromPeer(peer);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->team, "orders");
  EXPECT_EQ(p->role, Role::kViewer);
  EXPECT_EQ(p->source, "certificate");
  EXPECT_EQ(p->Describe(), "bob (viewer, team orders)");

  PeerIdentity agent = peer;
  agent.role = Role::kAgent;
  EXPECT_EQ(PrincipalFromPeer(agent).status().code(), StatusCode::kPermissionDenied);
  PeerIdentity bad_team = peer;
  bad_team.team.reset();
  bad_team.team_error = "the certificate carries two teams";
  EXPECT_EQ(PrincipalFromPeer(bad_team).status().code(), StatusCode::kPermissionDenied);
  PeerIdentity anon;
  EXPECT_EQ(PrincipalFromPeer(anon).status().code(), StatusCode::kUnauthenticated);
}

TEST(PrincipalTest, TeamSansAreValidatedLikeAgentIds) {
  EXPECT_EQ(*TeamFromUris({"faultline:role:operator", "faultline:team:orders"}), "orders");
  EXPECT_EQ(*TeamFromUris({"faultline:role:operator"}), std::nullopt);
  EXPECT_FALSE(TeamFromUris({"faultline:team:a b"}).ok());
  EXPECT_FALSE(TeamFromUris({"faultline:team:a", "faultline:team:b"}).ok());
  EXPECT_EQ(RoleFromUris({"faultline:role:viewer"}), Role::kViewer);
}

// ---- tokens ----

TEST_F(StoreTest, TokenAuthenticatesUntilRevokedAndStoresOnlyAHash) {
  TokenAuthority tokens(*store_, &clock_);
  auto issued = tokens.Create(Role::kOperator, "orders", std::chrono::seconds(0), "laptop",
                              "alice (operator)");
  ASSERT_TRUE(issued.ok()) << issued.status().ToString();
  const std::string token = issued->token;
  ASSERT_EQ(token.size(), 4 + 16 + 1 + 64u);
  // The store never holds the secret: only its SHA-256.
  auto stored = store_->GetToken(issued->record.id);
  ASSERT_TRUE(stored.ok());
  const std::string secret = token.substr(21);
  EXPECT_EQ(stored->secret_hash, Sha256Hex(secret));
  EXPECT_EQ(stored->secret_hash.find(secret), std::string::npos);

  auto p = tokens.Authenticate(token, "ipv4:1.2.3.4:5");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->role, Role::kOperator);
  EXPECT_EQ(p->team, "orders");
  EXPECT_EQ(p->source, "token");
  EXPECT_EQ(p->token_id, issued->record.id);
  EXPECT_TRUE(tokens.CheckStillValid(issued->record.id).ok());

  // One changed secret character: refused (negative control for the comparison).
  std::string wrong = token;
  wrong.back() = wrong.back() == '0' ? '1' : '0';
  EXPECT_EQ(tokens.Authenticate(wrong, "").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(tokens.Authenticate("flt_x", "").status().code(), StatusCode::kUnauthenticated);

  ASSERT_TRUE(tokens.Revoke(issued->record.id).ok());
  auto after = tokens.Authenticate(token, "");
  EXPECT_EQ(after.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(after.status().message().find("revoked"), std::string::npos);
  EXPECT_EQ(tokens.CheckStillValid(issued->record.id).code(), StatusCode::kUnauthenticated);
  // A second authority on the same store (another controller) sees the revocation too.
  TokenAuthority other(*store_, &clock_);
  EXPECT_FALSE(other.Authenticate(token, "").ok());
}

TEST_F(StoreTest, TokenExpires) {
  TokenAuthority tokens(*store_, &clock_);
  auto issued = tokens.Create(Role::kViewer, "", std::chrono::hours(1), "", "x");
  ASSERT_TRUE(issued.ok());
  clock_.Advance(std::chrono::minutes(59));
  EXPECT_TRUE(tokens.Authenticate(issued->token, "").ok());  // negative control
  clock_.Advance(std::chrono::minutes(2));
  auto p = tokens.Authenticate(issued->token, "");
  EXPECT_EQ(p.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(p.status().message().find("expired"), std::string::npos);
}

TEST_F(StoreTest, TokenCreationValidatesItsInput) {
  TokenAuthority tokens(*store_, &clock_);
  EXPECT_FALSE(tokens.Create(Role::kController, "", std::chrono::seconds(0), "", "x").ok());
  EXPECT_FALSE(tokens.Create(Role::kViewer, "bad team", std::chrono::seconds(0), "", "x").ok());
  EXPECT_FALSE(tokens.Create(Role::kViewer, "", std::chrono::seconds(-1), "", "x").ok());
  EXPECT_FALSE(tokens.Create(Role::kViewer, "", std::chrono::seconds(0), "a\nb", "x").ok());
}

TEST(TokenRulesTest, TeamOperatorsManageOnlyTheirTeamsTokens) {
  EXPECT_TRUE(CheckMayManageTokens(Who(Role::kOperator, ""), "orders").ok());
  EXPECT_TRUE(CheckMayManageTokens(Who(Role::kOperator, "orders"), "orders").ok());
  EXPECT_EQ(CheckMayManageTokens(Who(Role::kOperator, "orders"), "payments").code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(CheckMayManageTokens(Who(Role::kOperator, "orders"), "").code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(CheckMayManageTokens(Who(Role::kViewer, ""), "orders").code(),
            StatusCode::kPermissionDenied);
}

// ---- audit ----

TEST_F(StoreTest, AuditRecordsEveryFieldInTheStoreAndEscapesTheLogLine) {
  {
    AuditLog audit(store_.get(), &clock_);
    Principal p = Who(Role::kViewer, "orders");
    p.identity = "eve\" outcome=OK identity=\"root";
    audit.Record("halt", p, PermissionDenied("role viewer may not halt"), "reason=\"x\"");
    audit.Record("resume", Who(Role::kOperator, ""), Status::Ok());
    audit.Flush();
  }
  auto list = store_->ListAudit(0);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  const store::AuditRecord& refused = (*list)[1];
  EXPECT_EQ(refused.action, "halt");
  EXPECT_EQ(refused.outcome, "PERMISSION_DENIED");
  EXPECT_EQ(refused.role, "viewer");
  EXPECT_EQ(refused.team, "orders");
  EXPECT_EQ(refused.source, "certificate");
  EXPECT_EQ(refused.peer, "ipv4:127.0.0.1:5");
  EXPECT_NE(refused.detail.find("role viewer may not halt"), std::string::npos);
  EXPECT_EQ((*list)[0].outcome, "OK");
  std::string line = AuditLog::FormatLine(refused);
  EXPECT_NE(line.find("identity=\"eve\\\" outcome=OK identity=\\\"root\""), std::string::npos)
      << line;
  // The forged field never appears unescaped.
  EXPECT_EQ(line.find("identity=\"root"), std::string::npos) << line;
}

// ---- team policy ----

constexpr const char* kPolicy = R"(apiVersion: faultline/v1
kind: TeamPolicy
teams:
  orders:
    targets:
      - {team: orders}
      - {env: staging, role: app}
    max_blast_radius: 50%
  nightly:
    targets: [{team: orders}]
    windows:
      - {days: [mon-fri], hours: "09:00-17:00", tz: Europe/Berlin}
)";

std::shared_ptr<const TeamPolicy> Policy() {
  auto p = TeamPolicy::Parse(kPolicy, "policy.yaml");
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : nullptr;
}

experiment::Experiment Exp(const std::string& selector, const std::string& mode) {
  std::string yaml = R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: t}
targets:
  app: {selector: )" +
                     selector + R"(, mode: )" + mode + R"(}
faults:
  - name: f
    target: app
    network: {blackhole: {}}
    duration: 10s
probes:
  - name: p
    tcp: {address: "127.0.0.1:1"}
    interval: 1s
objectives:
  - {name: o, probe: p, recover_within: 1m}
)";
  auto out = experiment::ParseExperimentText(yaml, "t.yaml");
  if (!out.ok()) {
    for (const auto& e : out.errors) ADD_FAILURE() << e.ToString();
    return {};
  }
  return *out.experiment;
}

engine::Inventory Fleet(int orders_agents, int other_agents) {
  engine::Inventory inv;
  for (int i = 0; i < orders_agents; ++i) {
    inv.agents.push_back({"o" + std::to_string(i), "", {{"team", "orders"}, {"role", "app"}}});
  }
  for (int i = 0; i < other_agents; ++i) {
    inv.agents.push_back({"x" + std::to_string(i), "", {{"team", "payments"}, {"role", "app"}}});
  }
  return inv;
}

// 2026-12-07 is a Monday; 10:00 UTC = 11:00 in Berlin.
constexpr int64_t kMonday1000Utc = 1796637600000;

TEST(TeamPolicyTest, TargetsMustBeWithinTheTeamsSelectors) {
  auto policy = Policy();
  ASSERT_NE(policy, nullptr);
  auto inv = Fleet(4, 4);
  EXPECT_TRUE(policy
                  ->CheckRun(Who(Role::kOperator, "orders"), Exp("{team: orders}", "one"), inv,
                             kMonday1000Utc)
                  .ok());
  // Narrower than an allowed selector is fine.
  EXPECT_TRUE(policy
                  ->CheckRun(Who(Role::kOperator, "orders"),
                             Exp("{env: staging, role: app, zone: a}", "one"), inv, kMonday1000Utc)
                  .ok());
  Status s = policy->CheckRun(Who(Role::kOperator, "orders"), Exp("{team: payments}", "one"), inv,
                              kMonday1000Utc);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("(teams.orders.targets)"), std::string::npos) << s.message();
  // Broader than every allowed selector ({role: app} alone also matches payments' agents).
  s = policy->CheckRun(Who(Role::kOperator, "orders"), Exp("{role: app}", "one"), inv,
                       kMonday1000Utc);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
}

TEST(TeamPolicyTest, BlastRadiusIsTheShareOfMatchingAgentsTheRunFaults) {
  auto policy = Policy();
  ASSERT_NE(policy, nullptr);
  auto inv = Fleet(4, 4);
  auto who = Who(Role::kOperator, "orders");
  EXPECT_TRUE(policy->CheckRun(who, Exp("{team: orders}", "fixed:2"), inv, kMonday1000Utc).ok());
  EXPECT_TRUE(policy->CheckRun(who, Exp("{team: orders}", "percent:50"), inv, kMonday1000Utc).ok());
  Status s = policy->CheckRun(who, Exp("{team: orders}", "fixed:3"), inv, kMonday1000Utc);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("(teams.orders.max_blast_radius) the run would fault 3 of the 4"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(policy->CheckRun(who, Exp("{team: orders}", "all"), inv, kMonday1000Utc).code(),
            StatusCode::kPermissionDenied);
}

TEST(TeamPolicyTest, TimeWindowsInTheirTimeZone) {
  auto policy = Policy();
  ASSERT_NE(policy, nullptr);
  auto inv = Fleet(4, 0);
  auto who = Who(Role::kOperator, "nightly");
  auto exp = Exp("{team: orders}", "all");
  EXPECT_TRUE(policy->CheckRun(who, exp, inv, kMonday1000Utc).ok());  // 11:00 Berlin
  // 16:30 UTC = 17:30 in Berlin: after the window (it would be inside in UTC).
  Status s = policy->CheckRun(who, exp, inv, kMonday1000Utc + 6 * 3600000 + 1800000);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("(teams.nightly.windows)"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("mon 17:30 in Europe/Berlin"), std::string::npos) << s.message();
  // Saturday 11:00 Berlin: wrong day.
  EXPECT_FALSE(policy->CheckRun(who, exp, inv, kMonday1000Utc + 5 * 86400000LL).ok());
}

TEST(TeamPolicyTest, PrincipalsWithoutAKnownTeamMayNotStartRuns) {
  auto policy = Policy();
  ASSERT_NE(policy, nullptr);
  auto inv = Fleet(4, 0);
  auto exp = Exp("{team: orders}", "one");
  Status s = policy->CheckRun(Who(Role::kOperator, ""), exp, inv, kMonday1000Utc);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("has no team"), std::string::npos);
  EXPECT_EQ(policy->CheckRun(Who(Role::kOperator, "payments"), exp, inv, kMonday1000Utc).code(),
            StatusCode::kPermissionDenied);
}

TEST(TeamPolicyTest, ErrorsNameFileLineAndField) {
  auto bad = TeamPolicy::Parse(R"(apiVersion: faultline/v1
kind: TeamPolicy
teams:
  orders:
    targets: [{team: orders}]
    max_blast_radius: 150%
    windows:
      - {days: [mon-fry], hours: "09:00-25:00", tz: Mars/Olympus}
  "bad team":
    targets: [{}]
)",
                               "p.yaml");
  ASSERT_FALSE(bad.ok());
  const std::string m = bad.status().message();
  EXPECT_NE(m.find("p.yaml:6:23: teams.orders.max_blast_radius:"), std::string::npos) << m;
  EXPECT_NE(m.find("p.yaml:8:"), std::string::npos) << m;
  EXPECT_NE(m.find("teams.orders.windows[0].days[0]"), std::string::npos) << m;
  EXPECT_NE(m.find("teams.orders.windows[0].hours"), std::string::npos) << m;
  EXPECT_NE(m.find("teams.orders.windows[0].tz"), std::string::npos) << m;
  EXPECT_NE(m.find("'bad team' is not a team name"), std::string::npos) << m;
  EXPECT_FALSE(TeamPolicy::Parse("kind: Other\n", "q.yaml").ok());
  EXPECT_EQ(TeamPolicy::Load("/nonexistent/policy.yaml").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace faultline::access
