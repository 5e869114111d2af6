// The Probe RPC over a real in-process gRPC server: an agent-side probe streams samples stamped
// with the agent's monotonic clock, every field is validated, command probes run only for the
// programs the agent's own list allows, and a cancel or a halt stops the stream at once.
#include "agent/probe_streams.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "agent/agent_service.h"
#include "common/clock.h"
#include "common/probes/probe_runner.h"
#include "fake_backend.h"

namespace faultline::agent {
namespace {

using namespace std::chrono_literals;
using testing::FakeBackend;
using testing::FakeBackendState;
using testing::TempDir;

// A listening TCP socket on 127.0.0.1: connects succeed (the kernel completes the handshake).
class Listener {
 public:
  Listener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 1024);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~Listener() { close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

class ProbeStreamsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { probes::InitProbes(); }

  void SetUp() override {
    auto journal = Journal::Open(dir_.path() + "/journal");
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    journal_ = std::move(journal).value();
    ASSERT_TRUE(registry_.Register(std::make_unique<FakeBackend>(state_)).ok());
    registry_.DetectAll();
    manager_ = std::make_unique<FaultManager>(registry_, *journal_, clock_, FaultManagerOptions{});
    service_ = std::make_unique<AgentService>(*manager_, registry_, AgentIdentity{"a", {}},
                                              AccessPolicy::kPlaintextAllowAll);
    service_->SetProbeStreams(&streams_);
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Agent::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                   grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    streams_.CancelAll();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 5s);
  }

  v1::ProbeRequest Tcp(int port, uint32_t duration_ms, const std::string& run = "run1") {
    v1::ProbeRequest r;
    r.set_run_id(run);
    r.set_name("tcp-probe");
    r.mutable_tcp()->set_host("127.0.0.1");
    r.mutable_tcp()->set_port(static_cast<uint32_t>(port));
    r.set_interval_ms(50);
    r.set_timeout_ms(200);
    r.set_duration_ms(duration_ms);
    return r;
  }

  // Reads the whole stream; returns how it ended.
  grpc::Status ReadAll(const v1::ProbeRequest& request, std::vector<v1::ProbeSample>* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    auto reader = stub_->Probe(&ctx, request);
    v1::ProbeSample m;
    while (reader->Read(&m)) out->push_back(m);
    return reader->Finish();
  }

  TempDir dir_;
  FakeClock clock_;
  std::shared_ptr<FakeBackendState> state_ = std::make_shared<FakeBackendState>();
  FaultRegistry registry_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<FaultManager> manager_;
  ProbeStreams streams_{ProbeStreamOptions{{"/bin/true"}, 32}};
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Agent::Stub> stub_;
};

TEST_F(ProbeStreamsTest, StreamsSamplesOnTheAgentsClockUntilItsDuration) {
  Listener listener;
  const MonoTime before = SystemClock::Instance().Now();
  std::vector<v1::ProbeSample> got;
  grpc::Status st = ReadAll(Tcp(listener.port(), 300), &got);
  const MonoTime after = SystemClock::Instance().Now();
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_GE(got.size(), 2u);
  EXPECT_TRUE(got[0].started());
  EXPECT_EQ(got[0].max_in_flight(), 5u);  // ceil(200/50) + 1
  int answered = 0;
  for (size_t i = 1; i < got.size(); ++i) {
    const auto& s = got[i];
    EXPECT_FALSE(s.started());
    if (s.skipped()) continue;
    ++answered;
    EXPECT_TRUE(s.ok()) << s.detail();
    EXPECT_EQ(s.detail(), "connected");
    // The agent's clock is this process's monotonic clock here.
    EXPECT_GE(s.sent_ns(), before.count());
    EXPECT_LE(s.sent_ns(), s.answered_ns());
    EXPECT_LE(s.answered_ns(), after.count());
  }
  EXPECT_GE(answered, 1);
}

TEST_F(ProbeStreamsTest, AFailingTargetGivesFailingSamples) {
  int port = 0;
  {
    Listener closed;  // a port nothing listens on once it is closed: connects are refused
    port = closed.port();
  }
  std::vector<v1::ProbeSample> got;
  ASSERT_TRUE(ReadAll(Tcp(port, 200), &got).ok());
  int failed = 0;
  for (const auto& s : got) {
    if (s.started() || s.skipped()) continue;
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.detail().find("connect:"), std::string::npos) << s.detail();
    ++failed;
  }
  EXPECT_GE(failed, 1);
}

TEST_F(ProbeStreamsTest, RefusesInvalidFieldsNamingThem) {
  struct Case {
    std::function<void(v1::ProbeRequest&)> edit;
    grpc::StatusCode code;
    std::string mentions;
  };
  std::vector<Case> cases = {
      {[](auto& r) { r.set_interval_ms(10); }, grpc::StatusCode::INVALID_ARGUMENT, "interval_ms"},
      {[](auto& r) { r.set_interval_ms(120000); }, grpc::StatusCode::INVALID_ARGUMENT,
       "interval_ms"},
      {[](auto& r) { r.set_timeout_ms(5); }, grpc::StatusCode::INVALID_ARGUMENT, "timeout_ms"},
      {[](auto& r) { r.set_timeout_ms(600); }, grpc::StatusCode::INVALID_ARGUMENT,
       "at most 10 intervals"},
      {[](auto& r) { r.set_duration_ms(25 * 3600 * 1000); }, grpc::StatusCode::INVALID_ARGUMENT,
       "duration_ms"},
      {[](auto& r) { r.mutable_tcp()->set_port(0); }, grpc::StatusCode::INVALID_ARGUMENT,
       "tcp.port"},
      {[](auto& r) { r.mutable_tcp()->set_host("bad host!"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "tcp.host"},
      {[](auto& r) { r.set_name(""); }, grpc::StatusCode::INVALID_ARGUMENT, "name"},
      {[](auto& r) { r.mutable_http()->set_url("ftp://x/"); }, grpc::StatusCode::INVALID_ARGUMENT,
       "http.url"},
      {[](auto& r) {
         r.mutable_http()->set_url("http://" + std::string(3000, 'a'));
         r.mutable_http()->set_expect_status(200);
       },
       grpc::StatusCode::INVALID_ARGUMENT, "2048"},
      {[](auto& r) {
         r.mutable_http()->set_url("http://127.0.0.1/");
         r.mutable_http()->set_expect_status(200);
         r.mutable_http()->set_body_regex("(");
       },
       grpc::StatusCode::INVALID_ARGUMENT, "body_regex"},
      {[](auto& r) {
         r.mutable_dns()->set_name("x.test");
         r.mutable_dns()->set_server("resolver.test");
         r.mutable_dns()->set_expect("answer");
       },
       grpc::StatusCode::INVALID_ARGUMENT, "dns.server"},
      {[](auto& r) {
         r.mutable_dns()->set_name("x.test");
         r.mutable_dns()->set_expect("maybe");
       },
       grpc::StatusCode::INVALID_ARGUMENT, "dns.expect"},
      {[](auto& r) { r.mutable_grpc_health()->set_address("10.0.0.1"); },
       grpc::StatusCode::INVALID_ARGUMENT, "grpc_health.address"},
      {[](auto& r) { r.clear_tcp(); }, grpc::StatusCode::INVALID_ARGUMENT, "kind"},
      // Command probes: only what this agent's own list allows (here /bin/true).
      {[](auto& r) { r.mutable_command()->add_argv("/bin/sh"); },
       grpc::StatusCode::PERMISSION_DENIED, "--allow-probe-command"},
      {[](auto& r) { r.mutable_command()->add_argv("true"); }, grpc::StatusCode::PERMISSION_DENIED,
       "'true' is not one of them"},
      // A workload: validated like a fault's, then resolved by the agent itself (discovery is
      // off in this fixture, so even a valid selector ends the stream before `started`).
      {[](auto& r) { r.mutable_workload()->set_netns_path("run/netns/x"); },
       grpc::StatusCode::INVALID_ARGUMENT, "workload"},
      {[](auto& r) {
         r.mutable_workload()->set_runtime(v1::WorkloadSelector::DOCKER);
         r.mutable_workload()->add_ids("3f2a");
       },
       grpc::StatusCode::FAILED_PRECONDITION, "workload discovery is not enabled"},
  };
  for (const Case& c : cases) {
    v1::ProbeRequest r = Tcp(9, 1000);
    c.edit(r);
    std::vector<v1::ProbeSample> got;
    grpc::Status st = ReadAll(r, &got);
    EXPECT_EQ(st.error_code(), c.code) << c.mentions << ": " << st.error_message();
    EXPECT_NE(st.error_message().find(c.mentions), std::string::npos) << st.error_message();
    EXPECT_TRUE(got.empty()) << c.mentions;
  }
}

TEST_F(ProbeStreamsTest, RunsAnAllowedCommand) {
  v1::ProbeRequest r = Tcp(9, 200);
  r.mutable_command()->add_argv("/bin/true");
  std::vector<v1::ProbeSample> got;
  grpc::Status st = ReadAll(r, &got);
  ASSERT_TRUE(st.ok()) << st.error_message();
  int answered = 0;
  for (const auto& s : got) {
    if (s.started() || s.skipped()) continue;
    ++answered;
    EXPECT_TRUE(s.ok()) << s.detail();
    EXPECT_EQ(s.detail(), "exit 0");
  }
  EXPECT_GE(answered, 1);
}

TEST_F(ProbeStreamsTest, ACancelStopsTheProbe) {
  Listener listener;
  grpc::ClientContext ctx;
  auto reader = stub_->Probe(&ctx, Tcp(listener.port(), 0));  // until cancelled
  v1::ProbeSample m;
  ASSERT_TRUE(reader->Read(&m));
  ASSERT_TRUE(m.started());
  ASSERT_TRUE(reader->Read(&m));  // a sample
  EXPECT_EQ(streams_.Active(), 1);
  ctx.TryCancel();
  while (reader->Read(&m)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(streams_.WaitIdle(10s));
  EXPECT_EQ(streams_.Active(), 0);
}

TEST_F(ProbeStreamsTest, AHaltOfTheRunStopsItsProbesOnly) {
  Listener listener;
  grpc::ClientContext ctx1, ctx2;
  auto halted = stub_->Probe(&ctx1, Tcp(listener.port(), 0, "run1"));
  auto other = stub_->Probe(&ctx2, Tcp(listener.port(), 0, "run2"));
  v1::ProbeSample m;
  ASSERT_TRUE(halted->Read(&m));
  ASSERT_TRUE(other->Read(&m));
  v1::RevertAllRequest halt;
  halt.set_run_id("run1");
  v1::RevertAllResponse resp;
  grpc::ClientContext hctx;
  ASSERT_TRUE(stub_->RevertAll(&hctx, halt, &resp).ok());
  while (halted->Read(&m)) {
  }
  grpc::Status st = halted->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_NE(st.error_message().find("halt"), std::string::npos) << st.error_message();
  // run2's probe goes on: another sample arrives after the halt.
  ASSERT_TRUE(other->Read(&m));
  EXPECT_FALSE(m.started());
  ctx2.TryCancel();
  while (other->Read(&m)) {
  }
  EXPECT_EQ(other->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ProbeStreamsTest, GetInfoReportsTheAgentsMonotonicClock) {
  const MonoTime before = SystemClock::Instance().Now();
  grpc::ClientContext ctx;
  v1::AgentInfo info;
  ASSERT_TRUE(stub_->GetInfo(&ctx, v1::GetInfoRequest(), &info).ok());
  const MonoTime after = SystemClock::Instance().Now();
  EXPECT_GE(info.monotonic_ns(), before.count());
  EXPECT_LE(info.monotonic_ns(), after.count());
}

}  // namespace
}  // namespace faultline::agent
