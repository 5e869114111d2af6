#pragma once
// AgentConnection: how the run engine talks to one agent. Two implementations: AgentClient
// (direct gRPC to the agent's own server, `faultline run`) and the controller daemon's link
// over an agent's Attach stream (controller/daemon/attached_agent.h). Every call carries a
// deadline and returns a Status whose message names the agent.

#include <grpcpp/security/credentials.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/duration.h"
#include "common/status.h"
#include "controller/engine/inventory.h"
#include "faultline/v1/agent.grpc.pb.h"

namespace faultline::engine {

// A running agent-side probe stream (AgentConnection::StartProbe). Destroying it cancels the
// stream and waits until its `done` callback has returned (so never destroy it from inside that
// callback or a sample callback).
class ProbeStream {
 public:
  virtual ~ProbeStream() = default;
  // Ends the stream now (the agent stops sending at once). Idempotent; any thread.
  virtual void Cancel() = 0;
};

class AgentConnection {
 public:
  virtual ~AgentConnection() = default;
  virtual const AgentEndpoint& endpoint() const = 0;
  virtual Result<v1::AgentInfo> GetInfo(Duration deadline) = 0;
  // Idempotent on the agent side (same fault id + same spec), so a retry never double-applies.
  virtual Result<v1::FaultStatus> ApplyFault(const v1::ApplyFaultRequest& request,
                                             Duration deadline) = 0;
  virtual Result<v1::FaultStatus> RenewLease(const std::string& fault_id, Duration ttl,
                                             Duration deadline) = 0;
  // Idempotent: reverting an unknown or already reverted fault succeeds.
  virtual Result<v1::FaultStatus> RevertFault(const std::string& fault_id, Duration deadline) = 0;
  virtual Result<std::vector<v1::FaultStatus>> ListFaults(bool include_reverted,
                                                          Duration deadline) = 0;
  // The workloads on the agent's host that `selector` matches (read-only). The default answers
  // UNIMPLEMENTED (connections that predate workloads, fakes that do not need them).
  virtual Result<v1::ListWorkloadsResponse> ListWorkloads(const v1::WorkloadSelector& selector,
                                                          Duration deadline) {
    return Unimplemented("ListWorkloads is not supported by this connection");
  }

  // Asks the agent to run `request` (a probe) and calls `on_sample` with each message of its
  // stream (the first has `started` set), then `on_done` exactly once with how it ended (OK after
  // the request's duration; CANCELLED after Cancel; the agent's refusal otherwise). Callbacks
  // come from a gRPC thread, in order, and must not block. The default (connections that cannot
  // stream, fakes) calls on_done with UNIMPLEMENTED at once.
  virtual std::unique_ptr<ProbeStream> StartProbe(
      const v1::ProbeRequest& request, std::function<void(const v1::ProbeSample&)> on_sample,
      std::function<void(Status)> on_done);

  // Asynchronous forms, for fanning one operation out to many agents without a thread each
  // (controller/engine/fan_out.h). `done` is called exactly once, from any thread, possibly
  // before the call returns; the connection must outlive that call. The defaults run the
  // blocking form on the caller's thread (fine for fakes; real connections override them).
  template <typename T>
  using Done = std::function<void(Result<T>)>;
  virtual void GetInfoAsync(Duration deadline, Done<v1::AgentInfo> done) {
    done(GetInfo(deadline));
  }
  virtual void ApplyFaultAsync(const v1::ApplyFaultRequest& request, Duration deadline,
                               Done<v1::FaultStatus> done) {
    done(ApplyFault(request, deadline));
  }
  virtual void RenewLeaseAsync(const std::string& fault_id, Duration ttl, Duration deadline,
                               Done<v1::FaultStatus> done) {
    done(RenewLease(fault_id, ttl, deadline));
  }
  virtual void RevertFaultAsync(const std::string& fault_id, Duration deadline,
                                Done<v1::FaultStatus> done) {
    done(RevertFault(fault_id, deadline));
  }
};

// Makes the connection to one agent of a run; never returns null.
using AgentConnector =
    std::function<std::shared_ptr<AgentConnection>(const AgentEndpoint& endpoint)>;

// Direct gRPC to an agent's Agent service.
class AgentClient final : public AgentConnection {
 public:
  // Connects lazily (no I/O here) with `credentials`: normally mTLS (MakeChannelCredentials in
  // common/tls.h, which also checks the agent's certificate against the address dialled);
  // grpc::InsecureChannelCredentials() only for agents started with --insecure. Must not be null.
  // Messages are capped at 4 MiB each way.
  AgentClient(AgentEndpoint endpoint, std::shared_ptr<grpc::ChannelCredentials> credentials);

  const AgentEndpoint& endpoint() const override { return endpoint_; }
  Result<v1::AgentInfo> GetInfo(Duration deadline) override;
  Result<v1::FaultStatus> ApplyFault(const v1::ApplyFaultRequest& request,
                                     Duration deadline) override;
  Result<v1::FaultStatus> RenewLease(const std::string& fault_id, Duration ttl,
                                     Duration deadline) override;
  Result<v1::FaultStatus> RevertFault(const std::string& fault_id, Duration deadline) override;
  Result<std::vector<v1::FaultStatus>> ListFaults(bool include_reverted,
                                                  Duration deadline) override;
  Result<v1::ListWorkloadsResponse> ListWorkloads(const v1::WorkloadSelector& selector,
                                                  Duration deadline) override;
  std::unique_ptr<ProbeStream> StartProbe(const v1::ProbeRequest& request,
                                          std::function<void(const v1::ProbeSample&)> on_sample,
                                          std::function<void(Status)> on_done) override;
  // gRPC's callback API: no thread is held while the agent answers.
  void GetInfoAsync(Duration deadline, Done<v1::AgentInfo> done) override;
  void ApplyFaultAsync(const v1::ApplyFaultRequest& request, Duration deadline,
                       Done<v1::FaultStatus> done) override;
  void RenewLeaseAsync(const std::string& fault_id, Duration ttl, Duration deadline,
                       Done<v1::FaultStatus> done) override;
  void RevertFaultAsync(const std::string& fault_id, Duration deadline,
                        Done<v1::FaultStatus> done) override;

 private:
  Status Convert(const grpc::Status& s, const char* what) const;

  AgentEndpoint endpoint_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Agent::Stub> stub_;
};

}  // namespace faultline::engine
