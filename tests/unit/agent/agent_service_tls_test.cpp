// AgentService over real mTLS on 127.0.0.1:<ephemeral>: who gets through the handshake, who may
// mutate, and that a rotated certificate is picked up without a restart. Certificates are made
// by the same code as `faultline certs init` (common/certificates.h) into a temporary directory.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "agent/agent_service.h"
#include "common/atomic_file.h"
#include "common/certificates.h"
#include "common/tls.h"
#include "fake_backend.h"

namespace faultline::agent {
namespace {

using testing::FakeBackend;
using testing::FakeBackendState;
using testing::MakeRequest;
using testing::TempDir;

CertificateAndKey MustCa(const std::string& cn) {
  auto ca = CreateCertificateAuthority(cn, std::chrono::hours(24));
  EXPECT_TRUE(ca.ok()) << ca.status().ToString();
  return *ca;
}

CertificateAndKey MustIssue(const CertificateAndKey& ca, CertificateRequest request) {
  auto issued = IssueCertificate(ca, request);
  EXPECT_TRUE(issued.ok()) << issued.status().ToString();
  return *issued;
}

CertificateRequest AgentRequest(const std::string& cn, std::vector<std::string> ips) {
  CertificateRequest r{cn, Role::kAgent};
  r.ip_sans = std::move(ips);
  r.server_auth = true;
  return r;
}

class AgentServiceTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ca_ = MustCa("test CA");
    Write("ca.pem", ca_.cert_pem);
    WritePair("agent", MustIssue(ca_, AgentRequest("agent-one", {"127.0.0.1"})));
    WritePair("operator", MustIssue(ca_, {"alice", Role::kOperator}));
    WritePair("controller", MustIssue(ca_, {"ctl", Role::kController}));
    WritePair("agentclient", MustIssue(ca_, {"other-agent", Role::kAgent}));
    WritePair("norole", MustIssue(ca_, {"nobody", std::nullopt}));

    auto journal = Journal::Open(dir_.path() + "/journal");
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    journal_ = std::move(journal).value();
    ASSERT_TRUE(registry_.Register(std::make_unique<FakeBackend>(state_)).ok());
    registry_.DetectAll();
    FaultManagerOptions options;
    options.max_lease_ttl = std::chrono::seconds(30);
    manager_ = std::make_unique<FaultManager>(registry_, *journal_, clock_, options);
    service_ = std::make_unique<AgentService>(*manager_, registry_, AgentIdentity{"a", {}});

    auto creds = MakeServerCredentials(Files("agent"), std::chrono::seconds(1));
    ASSERT_TRUE(creds.ok()) << creds.status().ToString();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *creds, &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port_, 0);

    audit_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
    spdlog::default_logger()->sinks().push_back(audit_);
  }

  void TearDown() override {
    auto& sinks = spdlog::default_logger()->sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), audit_), sinks.end());
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }
  void Write(const std::string& name, const std::string& content) {
    ASSERT_TRUE(WriteFileAtomically(Path(name), content, 0600).ok());
  }
  void WritePair(const std::string& name, const CertificateAndKey& pair) {
    Write(name + "-key.pem", pair.key_pem);
    Write(name + ".pem", pair.cert_pem);
  }
  TlsFiles Files(const std::string& name, const std::string& ca = "ca.pem") const {
    return {Path(ca), Path(name + ".pem"), Path(name + "-key.pem")};
  }

  // A stub on a channel of its own (a fresh connection, not a shared subchannel).
  std::unique_ptr<v1::Agent::Stub> Stub(std::shared_ptr<grpc::ChannelCredentials> creds) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return v1::Agent::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), creds, args));
  }
  std::unique_ptr<v1::Agent::Stub> StubFor(const std::string& name) {
    auto creds = MakeChannelCredentials(Files(name), std::chrono::seconds(1));
    EXPECT_TRUE(creds.ok()) << creds.status().ToString();
    return Stub(*creds);
  }

  static void SetDeadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  }
  grpc::Status Apply(v1::Agent::Stub& stub, const std::string& fault_id) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::ApplyFaultResponse response;
    return stub.ApplyFault(&ctx, MakeRequest("run1", fault_id), &response);
  }
  grpc::Status GetInfo(v1::Agent::Stub& stub, std::string* server_cn = nullptr) {
    grpc::ClientContext ctx;
    SetDeadline(ctx);
    v1::AgentInfo info;
    grpc::Status s = stub.GetInfo(&ctx, v1::GetInfoRequest(), &info);
    if (s.ok() && server_cn != nullptr) {
      auto values = ctx.auth_context()->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
      *server_cn = values.empty() ? "" : std::string(values[0].data(), values[0].size());
    }
    return s;
  }
  size_t Applied() {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->applied.size();
  }
  std::string AuditLines() {
    std::string out;
    for (const std::string& line : audit_->last_formatted()) {
      if (line.find("audit:") != std::string::npos) out += line;
    }
    return out;
  }

  TempDir dir_;
  CertificateAndKey ca_;
  FakeClock clock_;
  std::shared_ptr<FakeBackendState> state_ = std::make_shared<FakeBackendState>();
  FaultRegistry registry_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<FaultManager> manager_;
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> audit_;
};

TEST_F(AgentServiceTlsTest, OperatorAndControllerMayApplyAndRevert) {
  auto op = StubFor("operator");
  grpc::Status s = Apply(*op, "run1_0");
  ASSERT_TRUE(s.ok()) << s.error_message();
  auto ctl = StubFor("controller");
  s = Apply(*ctl, "run1_1");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Applied(), 2u);

  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::RevertAllRequest all;
  v1::RevertAllResponse reverted;
  s = ctl->RevertAll(&ctx, all, &reverted);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(reverted.reverted_size(), 2);
  std::string audit = AuditLines();
  EXPECT_NE(
      audit.find("action=ApplyFault outcome=OK identity=\"alice (operator)\" peer=ipv4:127.0.0.1:"),
      std::string::npos)
      << audit;
  EXPECT_NE(audit.find("action=RevertAll outcome=OK identity=\"ctl (controller)\""),
            std::string::npos)
      << audit;
}

TEST_F(AgentServiceTlsTest, AgentRoleOrNoRoleIsPermissionDeniedAndNothingApplied) {
  for (const char* who : {"agentclient", "norole"}) {
    SCOPED_TRACE(who);
    auto stub = StubFor(who);
    grpc::Status s = Apply(*stub, "run1_0");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << s.error_message();
    grpc::ClientContext renew_ctx;
    SetDeadline(renew_ctx);
    v1::RenewLeaseRequest renew;
    renew.set_fault_id("run1_0");
    renew.set_lease_ttl_ms(1000);
    v1::RenewLeaseResponse renewed;
    EXPECT_EQ(stub->RenewLease(&renew_ctx, renew, &renewed).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    grpc::ClientContext revert_ctx;
    SetDeadline(revert_ctx);
    v1::RevertFaultRequest revert;
    revert.set_fault_id("run1_0");
    v1::RevertFaultResponse reverted;
    EXPECT_EQ(stub->RevertFault(&revert_ctx, revert, &reverted).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    grpc::ClientContext all_ctx;
    SetDeadline(all_ctx);
    v1::RevertAllResponse all;
    EXPECT_EQ(stub->RevertAll(&all_ctx, v1::RevertAllRequest(), &all).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    // Read-only calls stay open to any authenticated peer.
    EXPECT_TRUE(GetInfo(*stub).ok());
  }
  EXPECT_EQ(Applied(), 0u);
  EXPECT_EQ(manager_->ActiveCount(), 0u);
  std::string audit = AuditLines();
  EXPECT_NE(audit.find("action=ApplyFault outcome=PERMISSION_DENIED identity=\"other-agent "
                       "(agent)\" peer=ipv4:127.0.0.1:"),
            std::string::npos)
      << audit;
  EXPECT_NE(audit.find("identity=\"nobody (no role)\""), std::string::npos) << audit;
  EXPECT_NE(audit.find("action=RevertAll outcome=PERMISSION_DENIED"), std::string::npos) << audit;
}

TEST_F(AgentServiceTlsTest, HandshakeWithoutClientCertificateIsRefused) {
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_.cert_pem;  // trusts the agent, but presents no certificate
  auto stub = Stub(grpc::SslCredentials(ssl));
  grpc::Status s = GetInfo(*stub);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(Apply(*stub, "run1_0").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Applied(), 0u);
}

TEST_F(AgentServiceTlsTest, HandshakeWithForeignCaCertificateIsRefused) {
  CertificateAndKey foreign = MustCa("foreign CA");
  WritePair("foreign", MustIssue(foreign, {"mallory", Role::kOperator}));
  auto stub = StubFor("foreign");  // trusts our CA for the agent; its own cert is foreign
  grpc::Status s = Apply(*stub, "run1_0");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(Applied(), 0u);
}

TEST_F(AgentServiceTlsTest, HandshakeWithExpiredCertificateIsRefused) {
  CertificateRequest expired{"old-operator", Role::kOperator};
  expired.not_before = -std::chrono::hours(48);
  expired.not_after = -std::chrono::hours(24);
  WritePair("expired", MustIssue(ca_, expired));
  auto stub = StubFor("expired");
  grpc::Status s = Apply(*stub, "run1_0");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_EQ(Applied(), 0u);
}

TEST_F(AgentServiceTlsTest, ClientRefusesAgentWhoseCertificateDoesNotNameTheAddress) {
  server_->Shutdown(std::chrono::system_clock::now());
  WritePair("elsewhere", MustIssue(ca_, AgentRequest("agent-elsewhere", {"10.77.0.99"})));
  auto creds = MakeServerCredentials(Files("elsewhere"), std::chrono::seconds(1));
  ASSERT_TRUE(creds.ok());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", *creds, &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  ASSERT_NE(server_, nullptr);
  auto stub = StubFor("operator");
  grpc::Status s = GetInfo(*stub);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
}

TEST_F(AgentServiceTlsTest, RotatedAgentCertificateIsUsedByNewConnectionsWithoutRestart) {
  auto before = StubFor("operator");
  std::string cn;
  ASSERT_TRUE(GetInfo(*before, &cn).ok());
  EXPECT_EQ(cn, "agent-one");

  WritePair("agent", MustIssue(ca_, AgentRequest("agent-two", {"127.0.0.1"})));
  // The provider re-reads every second; poll new connections until one sees the new certificate.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (cn != "agent-two" && std::chrono::steady_clock::now() < deadline) {
    auto fresh = StubFor("operator");
    grpc::Status s = GetInfo(*fresh, &cn);
    ASSERT_TRUE(s.ok()) << s.error_message();
    if (cn != "agent-two") std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(cn, "agent-two");
}

}  // namespace
}  // namespace faultline::agent
