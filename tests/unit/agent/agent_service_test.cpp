#include "agent/agent_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "fake_backend.h"

namespace faultline::agent {
namespace {

using testing::FakeBackend;
using testing::FakeBackendState;
using testing::MakeRequest;
using testing::TempDir;

// A real gRPC server on 127.0.0.1:<ephemeral> serving AgentService over a fake backend.
class AgentServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto journal = Journal::Open(dir_.path() + "/journal");
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    journal_ = std::move(journal).value();
    ASSERT_TRUE(registry_.Register(std::make_unique<FakeBackend>(state_)).ok());
    registry_.DetectAll();
    FaultManagerOptions options;
    options.max_active_faults = 2;
    options.max_lease_ttl = std::chrono::seconds(30);
    manager_ = std::make_unique<FaultManager>(registry_, *journal_, clock_, options);
    // Plaintext (as with --insecure): every caller may mutate. mTLS and roles are tested in
    // agent_service_tls_test.cpp.
    service_ = std::make_unique<AgentService>(*manager_, registry_,
                                              AgentIdentity{"test-agent", {{"role", "app"}}},
                                              AccessPolicy::kPlaintextAllowAll);

    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::Agent::NewStub(channel_);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  // Every call gets a deadline, as every real client must.
  std::unique_ptr<grpc::ClientContext> Context() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

  grpc::Status Apply(const v1::ApplyFaultRequest& request, v1::ApplyFaultResponse* response) {
    return stub_->ApplyFault(Context().get(), request, response);
  }

  TempDir dir_;
  FakeClock clock_;
  std::shared_ptr<FakeBackendState> state_ = std::make_shared<FakeBackendState>();
  FaultRegistry registry_;
  std::unique_ptr<Journal> journal_;
  std::unique_ptr<FaultManager> manager_;
  std::unique_ptr<AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Agent::Stub> stub_;
};

TEST_F(AgentServiceTest, ApplyListRevertOverRealChannel) {
  v1::ApplyFaultResponse applied;
  grpc::Status status = Apply(MakeRequest("run1", "run1_0", "db.example.test", 5000), &applied);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(applied.fault().fault_id(), "run1_0");
  EXPECT_EQ(applied.fault().state(), v1::ACTIVE);

  v1::ListFaultsResponse listed;
  ASSERT_TRUE(stub_->ListFaults(Context().get(), v1::ListFaultsRequest(), &listed).ok());
  ASSERT_EQ(listed.faults_size(), 1);
  EXPECT_EQ(listed.faults(0).spec().dns().domains(0), "db.example.test");

  v1::RenewLeaseRequest renew;
  renew.set_fault_id("run1_0");
  renew.set_lease_ttl_ms(5000);
  v1::RenewLeaseResponse renewed;
  ASSERT_TRUE(stub_->RenewLease(Context().get(), renew, &renewed).ok());
  EXPECT_EQ(renewed.fault().state(), v1::ACTIVE);

  v1::RevertFaultRequest revert;
  revert.set_fault_id("run1_0");
  v1::RevertFaultResponse reverted;
  ASSERT_TRUE(stub_->RevertFault(Context().get(), revert, &reverted).ok());
  EXPECT_EQ(reverted.fault().state(), v1::REVERTED);
  EXPECT_EQ(reverted.fault().revert_reason(), "request");

  v1::RevertFaultResponse again;
  EXPECT_TRUE(stub_->RevertFault(Context().get(), revert, &again).ok());

  v1::ListFaultsRequest with_reverted;
  with_reverted.set_include_reverted(true);
  v1::ListFaultsResponse all;
  ASSERT_TRUE(stub_->ListFaults(Context().get(), with_reverted, &all).ok());
  ASSERT_EQ(all.faults_size(), 1);
  EXPECT_EQ(all.faults(0).state(), v1::REVERTED);
}

TEST_F(AgentServiceTest, ErrorsKeepTheirStatusCodes) {
  v1::ApplyFaultResponse response;
  EXPECT_EQ(Apply(MakeRequest("run1", "BAD ID"), &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Apply(MakeRequest("run1", "run1_0", "a.test", 60'000), &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Apply(MakeRequest("run1", "run1_0", "a.test"), &response).ok());
  EXPECT_EQ(Apply(MakeRequest("run1", "run1_0", "b.test"), &response).error_code(),
            grpc::StatusCode::ALREADY_EXISTS);
  ASSERT_TRUE(Apply(MakeRequest("run1", "run1_1"), &response).ok());
  EXPECT_EQ(Apply(MakeRequest("run1", "run1_2"), &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  v1::ApplyFaultRequest network = MakeRequest("run1", "run1_3");
  network.mutable_spec()->mutable_network();
  EXPECT_EQ(Apply(network, &response).error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  v1::RenewLeaseRequest renew;
  renew.set_fault_id("nothing_here");
  renew.set_lease_ttl_ms(1000);
  v1::RenewLeaseResponse renewed;
  EXPECT_EQ(stub_->RenewLease(Context().get(), renew, &renewed).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // Without ProbeStreams (agent/probe_streams_test.cpp tests the enabled service).
  v1::ProbeRequest probe;
  probe.mutable_tcp()->set_host("127.0.0.1");
  probe.mutable_tcp()->set_port(1);
  auto ctx = Context();
  auto reader = stub_->Probe(ctx.get(), probe);
  v1::ProbeSample sample;
  EXPECT_FALSE(reader->Read(&sample));
  grpc::Status probe_status = reader->Finish();
  EXPECT_EQ(probe_status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(probe_status.error_message(), "agent-side probes are not enabled on this agent");
}

// A workload as discovery answers it (kind container, runtime docker, a netns identity).
v1::Workload DiscoveredContainer(const std::string& id, const std::string& name) {
  v1::Workload w;
  w.set_kind("container");
  w.set_runtime("docker");
  w.set_id(id);
  w.set_name(name);
  w.set_netns_path("/proc/4242/ns/net");
  w.set_netns_dev(4);
  w.set_netns_ino(4026532999);
  w.add_pids(4242);
  w.set_host("test-agent");
  return w;
}

v1::ApplyFaultRequest WorkloadRequest(const std::string& fault_id, const std::string& app) {
  v1::ApplyFaultRequest request = MakeRequest("run1", fault_id);
  request.mutable_workload()->set_runtime(v1::WorkloadSelector::DOCKER);
  (*request.mutable_workload()->mutable_labels())["app"] = app;
  return request;
}

TEST_F(AgentServiceTest, AWorkloadFaultIsResolvedByTheAgentAndJournaledWithItsWorkload) {
  std::vector<std::string> asked;
  std::mutex asked_mu;
  service_->SetWorkloads(
      [&](const v1::WorkloadSelector& selector) -> Result<v1::ListWorkloadsResponse> {
        {
          std::lock_guard lock(asked_mu);
          asked.push_back(selector.labels().at("app"));
        }
        v1::ListWorkloadsResponse r;
        if (selector.labels().at("app") == "orders") {
          *r.add_workloads() = DiscoveredContainer("c0ffee01", "orders-1");
        } else if (selector.labels().at("app") == "twins") {
          *r.add_workloads() = DiscoveredContainer("c0ffee02", "twin-1");
          *r.add_workloads() = DiscoveredContainer("c0ffee03", "twin-2");
        }
        return r;
      },
      {{"docker", "unix:///fake.sock"}});

  v1::ApplyFaultResponse applied;
  grpc::Status status = Apply(WorkloadRequest("run1_0w0", "orders"), &applied);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(applied.fault().workload().id(), "c0ffee01");
  EXPECT_EQ(applied.fault().workload().name(), "orders-1");
  {
    std::lock_guard lock(state_->mu);
    ASSERT_EQ(state_->workloads_applied, std::vector<std::string>{"c0ffee01"});
    EXPECT_TRUE(state_->applied.size() == 1);
  }
  // The journal holds the request with the workload the agent resolved (what a restarted agent
  // reverts inside).
  JournalContents journaled = journal_->LoadAll();
  ASSERT_EQ(journaled.entries.size(), 1u);
  EXPECT_EQ(journaled.entries.front().resolved_workload().id(), "c0ffee01");
  EXPECT_EQ(journaled.entries.front().resolved_workload().netns_ino(), 4026532999u);

  // Nothing matches: NOT_FOUND naming the selector; nothing applied.
  status = Apply(WorkloadRequest("run1_1w0", "nothing"), &applied);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("no workload on agent test-agent matches"),
            std::string::npos)
      << status.error_message();
  // Several match: a fault acts in exactly one.
  status = Apply(WorkloadRequest("run1_2w0", "twins"), &applied);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("twin-2"), std::string::npos) << status.error_message();
  {
    std::lock_guard lock(state_->mu);
    EXPECT_EQ(state_->applied.size(), 1u);
  }
  std::lock_guard lock(asked_mu);
  EXPECT_EQ(asked, (std::vector<std::string>{"orders", "nothing", "twins"}));
}

TEST_F(AgentServiceTest, ACallerSuppliedResolvedWorkloadIsRefused) {
  bool asked = false;
  service_->SetWorkloads(
      [&](const v1::WorkloadSelector&) -> Result<v1::ListWorkloadsResponse> {
        asked = true;
        return v1::ListWorkloadsResponse();
      },
      {});
  v1::ApplyFaultRequest request = WorkloadRequest("run1_0w0", "orders");
  *request.mutable_resolved_workload() = DiscoveredContainer("c0ffee01", "orders-1");
  v1::ApplyFaultResponse applied;
  grpc::Status status = Apply(request, &applied);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("resolved_workload"), std::string::npos);
  // Also without a selector: the host fault is not applied either.
  request.clear_workload();
  EXPECT_EQ(Apply(request, &applied).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_FALSE(asked);
  std::lock_guard lock(state_->mu);
  EXPECT_TRUE(state_->applied.empty());
  EXPECT_TRUE(state_->workloads_applied.empty());
}

TEST_F(AgentServiceTest, AWorkloadFaultWithoutDiscoveryIsRefusedAndNothingLandsOnTheHost) {
  v1::ApplyFaultResponse applied;
  grpc::Status status = Apply(WorkloadRequest("run1_0w0", "orders"), &applied);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("discovery is not enabled"), std::string::npos);
  // An invalid selector is INVALID_ARGUMENT (runtime without labels, names or ids).
  v1::ApplyFaultRequest bad = MakeRequest("run1", "run1_1w0");
  bad.mutable_workload()->set_runtime(v1::WorkloadSelector::DOCKER);
  bad.mutable_workload()->set_pod_namespace("default");
  EXPECT_EQ(Apply(bad, &applied).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  std::lock_guard lock(state_->mu);
  EXPECT_TRUE(state_->applied.empty());
}

TEST_F(AgentServiceTest, GetInfoReportsIdentityCapabilitiesAndLimits) {
  v1::ApplyFaultResponse response;
  ASSERT_TRUE(Apply(MakeRequest("run1", "run1_0"), &response).ok());
  v1::AgentInfo info;
  ASSERT_TRUE(stub_->GetInfo(Context().get(), v1::GetInfoRequest(), &info).ok());
  EXPECT_EQ(info.agent_id(), "test-agent");
  EXPECT_EQ(info.labels().at("role"), "app");
  EXPECT_EQ(info.version(), AgentVersion());
  EXPECT_FALSE(info.version().empty());
  ASSERT_EQ(info.capabilities_size(), 1);
  EXPECT_EQ(info.capabilities(0), "dns");
  EXPECT_EQ(info.missing_capabilities().count("network"), 1u);
  EXPECT_EQ(info.active_faults(), 1u);
  EXPECT_EQ(info.max_active_faults(), 2u);
  EXPECT_EQ(info.max_lease_ttl_ms(), 30'000u);
}

TEST_F(AgentServiceTest, RevertAllByRunOverRealChannel) {
  v1::ApplyFaultResponse response;
  ASSERT_TRUE(Apply(MakeRequest("runa", "runa_0"), &response).ok());
  ASSERT_TRUE(Apply(MakeRequest("runb", "runb_0"), &response).ok());
  v1::RevertAllRequest request;
  request.set_run_id("runa");
  v1::RevertAllResponse reverted;
  ASSERT_TRUE(stub_->RevertAll(Context().get(), request, &reverted).ok());
  ASSERT_EQ(reverted.reverted_size(), 1);
  EXPECT_EQ(reverted.reverted(0).fault_id(), "runa_0");
  EXPECT_EQ(reverted.reverted(0).revert_reason(), "revert-all");
  EXPECT_EQ(manager_->ActiveCount(), 1u);
}

TEST_F(AgentServiceTest, RevertAllAnswersWhileAnApplyIsStuckAndTheApplyEndsAborted) {
  v1::ApplyFaultResponse applied;
  ASSERT_TRUE(Apply(MakeRequest("run1", "run1_0"), &applied).ok());
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->block_apply = true;
  }
  auto release = [this] { state_->ReleaseApplies(); };
  auto stuck = std::async(std::launch::async, [this] {
    v1::ApplyFaultResponse response;
    return Apply(MakeRequest("run1", "run1_1"), &response);
  });
  ASSERT_TRUE(state_->AwaitBlockedApplies(1, std::chrono::seconds(10)));

  // The halt is answered while the backend still holds the apply (10 s deadline: an agent whose
  // halt waits behind the apply fails here).
  v1::RevertAllResponse halted;
  grpc::Status status = stub_->RevertAll(Context().get(), v1::RevertAllRequest(), &halted);
  if (!status.ok()) release();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(halted.reverted_size(), 2);
  // ...and so is the stuck apply's caller, with an error, before the backend returns.
  bool answered = stuck.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  if (!answered) release();
  ASSERT_TRUE(answered) << "the stuck ApplyFault was not answered after the halt";
  grpc::Status ended = stuck.get();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::ABORTED) << ended.error_message();

  release();
  ASSERT_TRUE(service_->WaitAppliesIdle(std::chrono::seconds(10)));
  EXPECT_EQ(manager_->ActiveCount(), 0u);
  EXPECT_TRUE(journal_->LoadAll().entries.empty());
  std::lock_guard<std::mutex> lock(state_->mu);
  EXPECT_EQ(state_->reverted, (std::vector<std::string>{"run1_0", "run1_1"}));
}

}  // namespace
}  // namespace faultline::agent
