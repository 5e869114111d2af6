#include "agent/server_limits.h"

#include <grpcpp/resource_quota.h>

namespace faultline::agent {

void ApplyServerLimits(grpc::ServerBuilder& builder, const ServerLimits& limits) {
  builder.SetMaxReceiveMessageSize(limits.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(limits.max_send_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             static_cast<int>(limits.handshake_timeout.count()));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             static_cast<int>(limits.max_connection_idle.count()));
  grpc::ResourceQuota quota("faultline-agent");
  quota.SetMaxThreads(limits.max_threads);
  quota.Resize(limits.max_memory_bytes);
  builder.SetResourceQuota(quota);
}

}  // namespace faultline::agent
