// The controller over real mTLS on 127.0.0.1:0 with certificates from the project's own
// certificate code: an agent is registered under the id its certificate carries, never the one
// its Hello claims; the registry is bounded; command probes need the controller's allowlist.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "common/atomic_file.h"
#include "common/certificates.h"
#include "common/tls.h"
#include "controller/daemon/agent_registry.h"
#include "controller/daemon/controller_service.h"
#include "tests/unit/agent/fake_backend.h"
#include "tests/unit/controller/test_certificates.h"

namespace faultline::daemon {
namespace {

using agent::testing::TempDir;
using namespace std::chrono_literals;

// One raw Attach stream: Hello, then the Welcome or the stream's end.
struct AttachResult {
  bool welcomed = false;
  grpc::Status status;  // when not welcomed
};

class AgentIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(certs_.Init(dir_.path()));
    certs_.Issue("controller", testing::TestCertificates::LoopbackServer("ctl", Role::kController));
    CertificateRequest shared{"faultline-agent", Role::kAgent};  // no agent id
    certs_.Issue("shared", shared);
    for (const char* id : {"agent-a", "agent-b", "agent-c"}) {
      CertificateRequest one{id, Role::kAgent};
      one.agent_id = id;
      certs_.Issue(id, one);
    }
  }

  void Start(AgentRegistryOptions registry_options = {}) {
    registry_ = std::make_unique<AgentRegistry>(registry_options);
    service_ = std::make_unique<ControllerService>(*registry_, ControllerServiceOptions{});
    auto creds = MakeServerCredentials(certs_.Files("controller"), std::chrono::seconds(1));
    ASSERT_TRUE(creds.ok()) << creds.status().ToString();
    grpc::ServerBuilder builder;
    ConfigureControllerServer(builder);  // as faultline-controller serves
    builder.AddListeningPort("127.0.0.1:0", *creds, &port_);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  void TearDown() override {
    streams_.clear();
    service_.reset();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 2s);
    registry_.reset();
  }

  // Dials the controller with certificate `cert`, says Hello as `claimed_id`. A welcomed stream
  // stays open (kept in streams_) until the test ends or CloseStreams.
  AttachResult Attach(const std::string& cert, const std::string& claimed_id) {
    auto creds =
        MakeChannelCredentials(certs_.Files(cert), Role::kController, std::chrono::seconds(1));
    EXPECT_TRUE(creds.ok()) << creds.status().ToString();
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto open = std::make_unique<OpenStream>();
    open->stub = v1::Controller::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), *creds, args));
    open->ctx.set_deadline(std::chrono::system_clock::now() + 60s);
    open->stream = open->stub->Attach(&open->ctx);
    v1::AgentMessage hello;
    hello.mutable_hello()->mutable_info()->set_agent_id(claimed_id);
    AttachResult result;
    v1::ControllerMessage in;
    if (open->stream->Write(hello) && open->stream->Read(&in) && in.has_welcome()) {
      result.welcomed = true;
      streams_.push_back(std::move(open));
      return result;
    }
    result.status = open->stream->Finish();
    return result;
  }

  void CloseStream(size_t i) {
    streams_[i]->ctx.TryCancel();
    streams_[i]->stream->Finish();
  }

  bool Live(const std::string& id) const {
    for (const AgentSnapshot& a : registry_->List(false)) {
      if (a.info.agent_id() == id) return true;
    }
    return false;
  }

  struct OpenStream {
    std::unique_ptr<v1::Controller::Stub> stub;
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReaderWriter<v1::AgentMessage, v1::ControllerMessage>> stream;
  };

  TempDir dir_;
  testing::TestCertificates certs_;
  std::unique_ptr<AgentRegistry> registry_;
  std::unique_ptr<ControllerService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::vector<std::unique_ptr<OpenStream>> streams_;
};

// Any agent certificate could attach under any id and take another agent's place (its commands,
// its faults). The certificate's id is the identity now.
TEST_F(AgentIdentityTest, HelloClaimingAnotherIdThanTheCertificateIsRefused) {
  Start();
  AttachResult forged = Attach("agent-a", "agent-b");
  EXPECT_FALSE(forged.welcomed);
  EXPECT_EQ(forged.status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << forged.status.error_message();
  EXPECT_NE(forged.status.error_message().find("agent-a"), std::string::npos);
  EXPECT_FALSE(Live("agent-b"));
  EXPECT_FALSE(Live("agent-a"));
  // Negative control: the same certificate claiming its own id is registered.
  EXPECT_TRUE(Attach("agent-a", "agent-a").welcomed);
  EXPECT_TRUE(registry_->AwaitLive("agent-a", 10s));
}

TEST_F(AgentIdentityTest, AnotherAgentsCertificateCannotTakeOverALiveAgent) {
  Start();
  ASSERT_TRUE(Attach("agent-a", "agent-a").welcomed);
  ASSERT_TRUE(registry_->AwaitLive("agent-a", 10s));
  AttachResult takeover = Attach("agent-b", "agent-a");
  EXPECT_EQ(takeover.status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // agent-a's own stream was not replaced: it is still open and live.
  ASSERT_EQ(registry_->List(false).size(), 1u);
  EXPECT_EQ(registry_->List(false)[0].info.agent_id(), "agent-a");
  EXPECT_TRUE(Live("agent-a"));
}

TEST_F(AgentIdentityTest, CertificateWithoutAnAgentIdIsRefused) {
  Start();
  AttachResult shared = Attach("shared", "agent-a");
  EXPECT_EQ(shared.status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << shared.status.error_message();
  EXPECT_NE(shared.status.error_message().find("no agent id"), std::string::npos)
      << shared.status.error_message();
  EXPECT_EQ(registry_->LiveCount(), 0u);
}

TEST_F(AgentIdentityTest, RegistryIsBoundedAndGoneAgentsMakeRoom) {
  AgentRegistryOptions options;
  options.max_agents = 2;
  options.heartbeat_interval = 10s;  // nobody is dropped for silence during the test
  Start(options);
  ASSERT_TRUE(Attach("agent-a", "agent-a").welcomed);
  ASSERT_TRUE(Attach("agent-b", "agent-b").welcomed);
  ASSERT_TRUE(registry_->AwaitLiveCount(2, 10s));
  AttachResult third = Attach("agent-c", "agent-c");
  EXPECT_FALSE(third.welcomed);
  EXPECT_EQ(third.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << third.status.error_message();
  EXPECT_EQ(registry_->List(true).size(), 2u);
  // agent-b goes away: its place may be taken, and the registry stays at two.
  CloseStream(1);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (Live("agent-b") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(Live("agent-b"));
  EXPECT_TRUE(Attach("agent-c", "agent-c").welcomed);
  EXPECT_TRUE(registry_->AwaitLive("agent-c", 10s));
  EXPECT_EQ(registry_->List(true).size(), 2u);
  EXPECT_TRUE(Live("agent-a"));
}

constexpr char kCommandProbeExperiment[] = R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: command-probe}
targets:
  all: {selector: {role: db}, mode: all}
faults:
  - name: dns
    target: all
    dns: {domains: ["db.example.test"], mode: nodata}
    duration: 1s
probes:
  - name: local
    command: {argv: ["/usr/bin/id"]}
    interval: 100ms
objectives:
  - {name: ok, probe: local, recover_within: 1m}
)";

// The controller's TLS frames are small (ConfigureControllerServer, for its memory per agent): a
// command and an answer many frames long still cross the stream intact, both ways.
TEST_F(AgentIdentityTest, MessagesLargerThanATlsFrameCrossTheStream) {
  Start();
  ASSERT_TRUE(Attach("agent-a", "agent-a").welcomed);
  ASSERT_TRUE(registry_->AwaitLive("agent-a", 10s));
  v1::ControllerCommand command;
  auto* apply = command.mutable_apply();
  apply->set_run_id("r1");
  apply->set_fault_id("big");
  for (int i = 0; i < 2000; ++i) {
    apply->mutable_spec()->mutable_dns()->add_domains("host-" + std::to_string(i) +
                                                      ".example.test");
  }
  ASSERT_GT(command.ByteSizeLong(), 8u * kAgentTlsFrameBytes);
  std::promise<Result<v1::CommandResult>> answered;
  registry_->Send("agent-a", command, 30s,
                  [&answered](Result<v1::CommandResult> r) { answered.set_value(std::move(r)); });

  v1::ControllerMessage in;
  ASSERT_TRUE(streams_[0]->stream->Read(&in));
  ASSERT_TRUE(in.has_command());
  EXPECT_EQ(in.command().apply().spec().dns().domains_size(), 2000);
  EXPECT_EQ(in.command().apply().spec().dns().domains(1999), "host-1999.example.test");
  v1::AgentMessage reply;
  reply.mutable_result()->set_request_id(in.command().request_id());
  reply.mutable_result()->set_message(std::string(256 * 1024, 'x'));
  ASSERT_TRUE(streams_[0]->stream->Write(reply));

  auto future = answered.get_future();
  ASSERT_EQ(future.wait_for(30s), std::future_status::ready);
  Result<v1::CommandResult> result = future.get();
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->message().size(), 256u * 1024);
}

// The controller runs other people's experiments: a command probe on its host needs its own
// --allow-command-probe.
TEST_F(AgentIdentityTest, CommandProbeOnTheControllerNeedsItsAllowlist) {
  Start();
  RunRequest request;
  request.experiment_yaml = kCommandProbeExperiment;
  Result<std::string> refused = service_->StartRun(request);
  EXPECT_EQ(refused.status().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(refused.status().message().find("'/usr/bin/id'"), std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("--allow-command-probe"), std::string::npos);
}

}  // namespace
}  // namespace faultline::daemon
