// Access control through the real Controller service over mTLS on 127.0.0.1:0: viewer vs
// operator certificates, the team policy on SubmitRun (refused runs start nothing and are
// audited), and the token RPCs. A real SQLite store; agents are raw Attach streams with labels.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/atomic_file.h"
#include "common/certificates.h"
#include "common/tls.h"
#include "controller/access/team_policy.h"
#include "controller/daemon/agent_registry.h"
#include "controller/daemon/controller_service.h"
#include "tests/unit/agent/fake_backend.h"
#include "tests/unit/controller/test_certificates.h"

namespace faultline::daemon {
namespace {

using agent::testing::TempDir;
using namespace std::chrono_literals;

constexpr char kPolicy[] = R"(apiVersion: faultline/v1
kind: TeamPolicy
teams:
  orders:
    targets: [{team: orders}]
    max_blast_radius: 100%
)";

std::string Experiment(const std::string& team) {
  return R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: policy-check}
targets:
  app: {selector: {team: )" +
         team + R"(}, mode: all}
faults:
  - name: cut
    target: app
    network: {blackhole: {}}
    duration: 30s
probes:
  - name: p
    tcp: {address: "127.0.0.1:1"}
    interval: 1s
objectives:
  - {name: o, probe: p, recover_within: 1m}
)";
}

class AccessRpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(certs_.Init(dir_.path()));
    certs_.Issue("controller", testing::TestCertificates::LoopbackServer("ctl", Role::kController));
    certs_.Issue("admin", {"admin", Role::kOperator});  // operator, no team
    CertificateRequest orders_op{"olga", Role::kOperator};
    orders_op.team = "orders";
    certs_.Issue("orders-op", orders_op);
    CertificateRequest payments_op{"paul", Role::kOperator};
    payments_op.team = "payments";
    certs_.Issue("payments-op", payments_op);
    CertificateRequest viewer{"vera", Role::kViewer};
    viewer.team = "orders";
    certs_.Issue("viewer", viewer);
    for (const char* id : {"o1", "p1"}) {
      CertificateRequest one{id, Role::kAgent};
      one.agent_id = id;
      certs_.Issue(id, one);
    }
    auto store = store::OpenRunStore("sqlite://" + dir_.path() + "/h.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    Write("policy.yaml", kPolicy);
    policy_ = std::make_unique<access::PolicyFile>(dir_.path() + "/policy.yaml");
    ASSERT_TRUE(policy_->Reload().ok());

    registry_ = std::make_unique<AgentRegistry>(AgentRegistryOptions{});
    ControllerServiceOptions options;
    options.store = store_.get();
    options.policy = policy_.get();
    options.rpc_deadline = 500ms;
    options.fanout_deadline = 500ms;
    service_ = std::make_unique<ControllerService>(*registry_, options);
    auto creds = MakeServerCredentials(certs_.Files("controller"), std::chrono::seconds(1));
    ASSERT_TRUE(creds.ok()) << creds.status().ToString();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *creds, &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    AttachAgent("o1", "orders");
    AttachAgent("p1", "payments");
    ASSERT_TRUE(registry_->AwaitLiveCount(2, 10s));
  }

  void TearDown() override {
    for (auto& s : streams_) s->ctx.TryCancel();
    service_.reset();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 2s);
    streams_.clear();
    registry_.reset();
  }

  void Write(const std::string& name, const std::string& content) {
    ASSERT_TRUE(WriteFileAtomically(dir_.path() + "/" + name, content, 0600).ok());
  }
  std::unique_ptr<v1::Controller::Stub> Stub(const std::string& cert) {
    auto creds =
        MakeChannelCredentials(certs_.Files(cert), Role::kController, std::chrono::seconds(1));
    EXPECT_TRUE(creds.ok()) << creds.status().ToString();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return v1::Controller::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), *creds, args));
  }

  struct OpenStream {
    std::unique_ptr<v1::Controller::Stub> stub;
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>> stream;
  };
  void AttachAgent(const std::string& id, const std::string& team) {
    auto open = std::make_unique<OpenStream>();
    open->stub = Stub(id);
    open->ctx.set_deadline(std::chrono::system_clock::now() + 120s);
    open->stream = open->stub->Attach(&open->ctx);
    v1::AgentMessage hello;
    hello.mutable_hello()->mutable_info()->set_agent_id(id);
    (*hello.mutable_hello()->mutable_info()->mutable_labels())["team"] = team;
    v1::ControllerMessage in;
    ASSERT_TRUE(open->stream->Write(hello) && open->stream->Read(&in) && in.has_welcome());
    streams_.push_back(std::move(open));
  }

  // SubmitRun with `cert`; returns the final status, or OK once the run reported progress (the
  // run was started; the call is then cancelled, which aborts it).
  grpc::Status Submit(const std::string& cert, const std::string& yaml) {
    auto stub = Stub(cert);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    v1::SubmitRunRequest req;
    req.set_experiment_yaml(yaml);
    auto reader = stub->SubmitRun(&ctx, req);
    v1::RunEvent ev;
    if (reader->Read(&ev)) {
      ctx.TryCancel();
      reader->Finish();
      return grpc::Status::OK;
    }
    return reader->Finish();
  }

  size_t RunsRecorded() {
    auto runs = store_->ListRuns(store::RunFilter{});
    EXPECT_TRUE(runs.ok());
    return runs.ok() ? runs->size() : 0;
  }

  std::vector<store::AuditRecord> Audit() {
    service_->audit().Flush();
    auto list = store_->ListAudit(0);
    EXPECT_TRUE(list.ok());
    return list.ok() ? *list : std::vector<store::AuditRecord>{};
  }

  TempDir dir_;
  testing::TestCertificates certs_;
  std::unique_ptr<store::RunStore> store_;
  std::unique_ptr<access::PolicyFile> policy_;
  std::unique_ptr<AgentRegistry> registry_;
  std::unique_ptr<ControllerService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::vector<std::unique_ptr<OpenStream>> streams_;
};

TEST_F(AccessRpcTest, TeamCannotTargetAgentsOutsideItsPolicyAndTheRefusalIsAudited) {
  grpc::Status s = Submit("orders-op", Experiment("payments"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
  EXPECT_NE(s.error_message().find("(teams.orders.targets)"), std::string::npos)
      << s.error_message();
  EXPECT_EQ(RunsRecorded(), 0u);  // nothing started, nothing recorded
  auto audit = Audit();
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit[0].action, "run.submit");
  EXPECT_EQ(audit[0].outcome, "PERMISSION_DENIED");
  EXPECT_EQ(audit[0].identity, "olga");
  EXPECT_EQ(audit[0].team, "orders");
  EXPECT_EQ(audit[0].role, "operator");
  EXPECT_EQ(audit[0].source, "certificate");
  EXPECT_NE(audit[0].peer.find("127.0.0.1"), std::string::npos);

  // A team the policy does not list, and an operator without a team: refused too.
  EXPECT_EQ(Submit("payments-op", Experiment("payments")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  s = Submit("admin", Experiment("orders"));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("has no team"), std::string::npos) << s.error_message();
  EXPECT_EQ(RunsRecorded(), 0u);

  // Negative control: the same team targeting its own agents starts the run.
  s = Submit("orders-op", Experiment("orders"));
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(RunsRecorded(), 1u);
}

TEST_F(AccessRpcTest, ViewerReadsButCannotActAndGetsAClearRefusal) {
  auto viewer = Stub("viewer");
  {
    grpc::ClientContext ctx;
    v1::ListAgentsResponse agents;
    grpc::Status s = viewer->ListAgents(&ctx, v1::ListAgentsRequest(), &agents);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(agents.agents_size(), 2);
  }
  {
    grpc::ClientContext ctx;
    v1::HaltRequest req;
    v1::HaltResponse resp;
    grpc::Status s = viewer->Halt(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_NE(s.error_message().find("role viewer may not Halt"), std::string::npos)
        << s.error_message();
  }
  EXPECT_FALSE(service_->halted());
  EXPECT_EQ(Submit("viewer", Experiment("orders")).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(RunsRecorded(), 0u);
  // Negative control: an operator halts.
  auto admin = Stub("admin");
  grpc::ClientContext ctx;
  v1::HaltResponse resp;
  ASSERT_TRUE(admin->Halt(&ctx, v1::HaltRequest(), &resp).ok());
  EXPECT_TRUE(service_->halted());
  auto audit = Audit();
  bool refused_halt = false, halt = false;
  for (const auto& a : audit) {
    refused_halt |= a.action == "Halt" && a.outcome == "PERMISSION_DENIED" && a.identity == "vera";
    halt |= a.action == "halt" && a.outcome == "OK" && a.identity == "admin";
  }
  EXPECT_TRUE(refused_halt);
  EXPECT_TRUE(halt);
}

TEST_F(AccessRpcTest, TokensAreCreatedListedWithoutSecretsAndRevokedAtOnce) {
  auto admin = Stub("admin");
  v1::CreateTokenResponse created;
  {
    grpc::ClientContext ctx;
    v1::CreateTokenRequest req;
    req.set_role("viewer");
    req.set_team("orders");
    req.set_name("wallboard");
    ASSERT_TRUE(admin->CreateToken(&ctx, req, &created).ok());
  }
  ASSERT_TRUE(service_->tokens()->Authenticate(created.token(), "").ok());
  {
    grpc::ClientContext ctx;
    v1::ListTokensResponse list;
    ASSERT_TRUE(admin->ListTokens(&ctx, v1::ListTokensRequest(), &list).ok());
    ASSERT_EQ(list.tokens_size(), 1);
    EXPECT_EQ(list.tokens(0).id(), created.record().id());
    EXPECT_EQ(list.DebugString().find(created.token().substr(21)), std::string::npos);
  }
  // A team's operator may not mint tokens for another team; a viewer none at all.
  for (const char* who : {"payments-op", "viewer"}) {
    grpc::ClientContext ctx;
    v1::CreateTokenRequest req;
    req.set_role("operator");
    req.set_team("orders");
    v1::CreateTokenResponse resp;
    EXPECT_EQ(Stub(who)->CreateToken(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << who;
  }
  {
    grpc::ClientContext ctx;
    v1::RevokeTokenRequest req;
    req.set_id(created.record().id());
    v1::RevokeTokenResponse resp;
    ASSERT_TRUE(Stub("orders-op")->RevokeToken(&ctx, req, &resp).ok());
  }
  EXPECT_EQ(service_->tokens()->Authenticate(created.token(), "").status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_FALSE(service_->tokens()->CheckStillValid(created.record().id()).ok());
  bool created_audited = false, revoked_audited = false;
  for (const auto& a : Audit()) {
    created_audited |= a.action == "token.create" && a.outcome == "OK" && a.identity == "admin";
    revoked_audited |= a.action == "token.revoke" && a.outcome == "OK" && a.team == "orders";
  }
  EXPECT_TRUE(created_audited);
  EXPECT_TRUE(revoked_audited);
}

}  // namespace
}  // namespace faultline::daemon
