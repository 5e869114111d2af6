// AgentService over real mTLS on 127.0.0.1:<ephemeral>: who gets through the handshake, who may
// mutate, and that a rotated certificate is picked up without a restart. Certificates are made
// by the same code as `faultline certs init` (common/certificates.h) into a temporary directory.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/agent_service.h"
#include "agent/net/accept_gate.h"
#include "agent/server_limits.h"
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

  // Replaces the server with one presenting certificate `name` (and `limits`, when given).
  void RestartServer(const std::string& name, const ServerLimits* limits = nullptr) {
    server_->Shutdown(std::chrono::system_clock::now());
    auto creds = MakeServerCredentials(Files(name), std::chrono::seconds(1));
    ASSERT_TRUE(creds.ok()) << creds.status().ToString();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", *creds, &port_);
    if (limits != nullptr) ApplyServerLimits(builder, *limits);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  // Replaces the server with the agent's layout under --listen: gRPC (with `limits`) on a
  // private unix socket, the accept gate with `cap` on 127.0.0.1:<ephemeral> in front of it.
  void ServeThroughGate(size_t cap, const ServerLimits& limits = ServerLimits{}) {
    server_->Shutdown(std::chrono::system_clock::now());
    auto creds = MakeServerCredentials(Files("agent"), std::chrono::seconds(1));
    ASSERT_TRUE(creds.ok()) << creds.status().ToString();
    auto socket_path = net::PrivateSocketPath(dir_.path() + "/grpc");
    ASSERT_TRUE(socket_path.ok()) << socket_path.status().ToString();
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + *socket_path, *creds);
    ApplyServerLimits(builder, limits);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto gate = net::AcceptGate::Start({"127.0.0.1:0", *socket_path, cap});
    ASSERT_TRUE(gate.ok()) << gate.status().ToString();
    gate_ = std::move(gate).value();
    port_ = gate_->port();
  }

  // Waits (bounded) until the gate relays `n` connections: it notices closes on its own thread.
  bool AwaitGateOpen(uint64_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (gate_->stats().open != n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
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
    auto creds = MakeChannelCredentials(Files(name), Role::kAgent, std::chrono::seconds(1));
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
  std::unique_ptr<net::AcceptGate> gate_;  // declared after server_: stops first
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
  WritePair("elsewhere", MustIssue(ca_, AgentRequest("agent-elsewhere", {"10.77.0.99"})));
  RestartServer("elsewhere");
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

// Open file descriptors of this process (the test and the in-process agent server share it).
size_t OpenFds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
}

// A TCP connection to 127.0.0.1:port that never sends a byte (never starts TLS).
int IdleConnection(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// Waits until the server closes `fd` (EOF or reset), up to `deadline`. True when it did.
bool AwaitClosedByPeer(int fd, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    char byte;
    ssize_t n = ::recv(fd, &byte, 1, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return true;
  }
}

// 500 idle TCP connections that never start TLS used to hold 500 of the agent's fds for gRPC's
// default 120 s handshake allowance. With the agent's limits the server closes each of them at
// the handshake deadline, and its fds come back; a real client still gets through.
TEST_F(AgentServiceTlsTest, IdleConnectionsThatNeverStartTlsAreClosedAndTheirFdsReleased) {
  ServerLimits limits;
  limits.handshake_timeout = std::chrono::milliseconds(500);
  RestartServer("agent", &limits);

  constexpr int kConnections = 500;
  rlimit nofile{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &nofile), 0);
  if (nofile.rlim_cur < 4 * kConnections) {
    nofile.rlim_cur = std::min<rlim_t>(nofile.rlim_max, 4 * kConnections);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &nofile), 0);
  }
  const size_t baseline = OpenFds();
  std::vector<int> idle;
  for (int i = 0; i < kConnections; ++i) {
    int fd = IdleConnection(port_);
    ASSERT_GE(fd, 0) << "connect " << i << ": " << std::strerror(errno);
    idle.push_back(fd);
  }
  // Far beyond the 500 ms deadline and far below gRPC's default 120 s: an event awaited with a
  // bound, not a timing threshold.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  size_t closed = 0;
  for (int fd : idle) closed += AwaitClosedByPeer(fd, deadline) ? 1 : 0;
  EXPECT_EQ(closed, idle.size()) << "idle connections the agent kept open";
  // The server's ends are gone: only ours remain beyond the baseline (polled: gRPC closes them
  // from its own threads).
  size_t fds = OpenFds();
  while (fds > baseline + idle.size() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    fds = OpenFds();
  }
  EXPECT_LE(fds, baseline + idle.size() + 4) << "fds the agent holds for idle connections";
  for (int fd : idle) ::close(fd);
  // Negative control: a client that does handshake is served.
  auto op = StubFor("operator");
  EXPECT_TRUE(GetInfo(*op).ok());
}

// The CLI dials an agent: the server must carry the agent role. A controller (or operator)
// certificate on the agent's address is refused by the client, even though the CA signed it and
// it names the address.
TEST_F(AgentServiceTlsTest, ClientRefusesAServerWithoutTheRoleItDialled) {
  CertificateRequest impostor{"ctl-on-agent-port", Role::kController};
  impostor.ip_sans = {"127.0.0.1"};
  impostor.server_auth = true;
  WritePair("impostor", MustIssue(ca_, impostor));
  RestartServer("impostor");

  auto want_agent =
      MakeChannelCredentials(Files("operator"), Role::kAgent, std::chrono::seconds(1));
  ASSERT_TRUE(want_agent.ok());
  auto stub = Stub(*want_agent);
  EXPECT_EQ(GetInfo(*stub).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Apply(*stub, "run1_0").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Applied(), 0u);
  // An agent dialling out wants a controller: this one is accepted (negative control).
  auto want_controller =
      MakeChannelCredentials(Files("agentclient"), Role::kController, std::chrono::seconds(1));
  ASSERT_TRUE(want_controller.ok());
  EXPECT_TRUE(GetInfo(*Stub(*want_controller)).ok());
}

TEST_F(AgentServiceTlsTest, AgentDiallingOutRefusesAServerWithAgentRole) {
  // The fixture's server carries role agent: an agent looking for its controller must refuse it.
  auto want_controller =
      MakeChannelCredentials(Files("agentclient"), Role::kController, std::chrono::seconds(1));
  ASSERT_TRUE(want_controller.ok());
  EXPECT_EQ(GetInfo(*Stub(*want_controller)).error_code(), grpc::StatusCode::UNAVAILABLE);
  // Negative control: the CLI, wanting an agent, gets through.
  EXPECT_TRUE(GetInfo(*StubFor("operator")).ok());
}

// Audit lines show ids only once validated, and escape whatever a peer controls, so a request
// cannot forge or split a log line.
TEST_F(AgentServiceTlsTest, AuditLinesCarryOnlyValidatedIds) {
  WritePair("evil", MustIssue(ca_, {"eve\" outcome=OK identity=\"root", Role::kOperator}));
  auto stub = StubFor("evil");
  grpc::ClientContext ctx;
  SetDeadline(ctx);
  v1::ApplyFaultRequest request = MakeRequest("run1", "run1_0");
  request.set_run_id("run1\naudit: at=x action=RevertAll outcome=OK");
  request.set_fault_id("x\" outcome=OK");
  v1::ApplyFaultResponse response;
  grpc::Status s = stub->ApplyFault(&ctx, request, &response);
  EXPECT_FALSE(s.ok());
  std::string audit = AuditLines();
  EXPECT_NE(audit.find("run_id=<invalid> fault_id=<invalid>"), std::string::npos) << audit;
  // The error echoes the bad id, escaped: no forged line starts inside it.
  EXPECT_EQ(audit.find("\naudit: at=x"), std::string::npos) << audit;
  EXPECT_NE(audit.find("run1\\x0aaudit: at=x"), std::string::npos) << audit;
  EXPECT_NE(audit.find("identity=\"eve\\x22 outcome=OK identity=\\x22root (operator)\""),
            std::string::npos)
      << audit;
  // Negative control: valid ids are shown as they are.
  EXPECT_TRUE(Apply(*StubFor("operator"), "run1_0").ok());
  EXPECT_NE(AuditLines().find("run_id=run1 fault_id=run1_0"), std::string::npos) << AuditLines();
}

// Issue 13: gRPC 1.51 cannot cap incoming connections, so 500 idle sockets held 500 fds until
// the handshake deadline. Through the accept gate, connections beyond the cap are closed at once
// by the server; those within it are held (and relayed); once they go, a real mTLS call is served.
TEST_F(AgentServiceTlsTest, ConnectionsBeyondTheCapAreClosedAtOnceAndCallsServedOnceReleased) {
  constexpr size_t kCap = 8;
  constexpr size_t kExtra = 5;
  ServerLimits limits;
  limits.handshake_timeout = std::chrono::minutes(2);  // only the cap closes connections here
  ServeThroughGate(kCap, limits);
  std::vector<int> idle;
  for (size_t i = 0; i < kCap + kExtra; ++i) {
    int fd = IdleConnection(port_);
    ASSERT_GE(fd, 0) << "connect " << i << ": " << std::strerror(errno);
    idle.push_back(fd);
  }
  // The gate accepts in connect order: the first kCap are relayed, the rest closed at once.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (size_t i = kCap; i < idle.size(); ++i) {
    EXPECT_TRUE(AwaitClosedByPeer(idle[i], deadline)) << "connection " << i << " beyond the cap";
  }
  for (size_t i = 0; i < kCap; ++i) {
    pollfd p{idle[i], POLLIN, 0};
    EXPECT_EQ(::poll(&p, 1, 0), 0) << "connection " << i << " within the cap was closed";
  }
  EXPECT_EQ(gate_->stats().open, kCap);
  EXPECT_EQ(gate_->stats().refused, kExtra);
  // At the cap even a good client is turned away...
  EXPECT_EQ(GetInfo(*StubFor("operator")).error_code(), grpc::StatusCode::UNAVAILABLE);
  // ...and served once the idle ones are gone, with mTLS terminating in gRPC as before.
  for (int fd : idle) ::close(fd);
  ASSERT_TRUE(AwaitGateOpen(0));
  std::string cn;
  grpc::Status s = GetInfo(*StubFor("operator"), &cn);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(cn, "agent-one");
  // Authorization still reads the client certificate, and the audit line names the real remote
  // address, not the gate's unix socket.
  s = Apply(*StubFor("operator"), "run1_0");
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(Apply(*StubFor("agentclient"), "run1_1").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  std::string audit = AuditLines();
  EXPECT_NE(
      audit.find("action=ApplyFault outcome=OK identity=\"alice (operator)\" peer=ipv4:127.0.0.1:"),
      std::string::npos)
      << audit;
  EXPECT_NE(audit.find("outcome=PERMISSION_DENIED identity=\"other-agent (agent)\" "
                       "peer=ipv4:127.0.0.1:"),
            std::string::npos)
      << audit;
  EXPECT_EQ(audit.find("unix"), std::string::npos) << audit;
}

// gRPC's handshake deadline still reaches clients through the gate: an idle connection counts
// toward the cap until the deadline, then the server closes it and its place is free again.
TEST_F(AgentServiceTlsTest, HandshakeDeadlineClosesIdleConnectionsThroughTheGate) {
  constexpr size_t kCap = 4;
  ServerLimits limits;
  limits.handshake_timeout = std::chrono::milliseconds(300);
  ServeThroughGate(kCap, limits);
  std::vector<int> idle;
  for (size_t i = 0; i < kCap; ++i) {
    int fd = IdleConnection(port_);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    idle.push_back(fd);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (int fd : idle) EXPECT_TRUE(AwaitClosedByPeer(fd, deadline));
  EXPECT_TRUE(AwaitGateOpen(0));
  EXPECT_EQ(gate_->stats().refused, 0u);
  for (int fd : idle) ::close(fd);
  EXPECT_TRUE(GetInfo(*StubFor("operator")).ok());
}

}  // namespace
}  // namespace faultline::agent
