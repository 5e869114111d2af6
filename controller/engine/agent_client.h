#pragma once
// AgentClient: the controller side of the Agent service. Every call carries a deadline and
// returns a Status whose message names the agent.

#include <grpcpp/security/credentials.h>

#include <memory>
#include <vector>

#include "common/duration.h"
#include "common/status.h"
#include "controller/engine/inventory.h"
#include "faultline/v1/agent.grpc.pb.h"

namespace faultline::engine {

class AgentClient {
 public:
  // Connects lazily (no I/O here) with `credentials`: normally mTLS (MakeChannelCredentials in
  // common/tls.h, which also checks the agent's certificate against the address dialled);
  // grpc::InsecureChannelCredentials() only for agents started with --insecure. Must not be null.
  // Messages are capped at 4 MiB each way.
  AgentClient(AgentEndpoint endpoint, std::shared_ptr<grpc::ChannelCredentials> credentials);

  const AgentEndpoint& endpoint() const { return endpoint_; }

  Result<v1::AgentInfo> GetInfo(Duration deadline);
  // Idempotent on the agent side (same fault id + same spec), so a retry never double-applies.
  Result<v1::FaultStatus> ApplyFault(const v1::ApplyFaultRequest& request, Duration deadline);
  Result<v1::FaultStatus> RenewLease(const std::string& fault_id, Duration ttl, Duration deadline);
  // Idempotent: reverting an unknown or already reverted fault succeeds.
  Result<v1::FaultStatus> RevertFault(const std::string& fault_id, Duration deadline);
  Result<std::vector<v1::FaultStatus>> ListFaults(bool include_reverted, Duration deadline);

 private:
  Status Convert(const grpc::Status& s, const char* what) const;

  AgentEndpoint endpoint_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Agent::Stub> stub_;
};

}  // namespace faultline::engine
