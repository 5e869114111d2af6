#pragma once
// The resource budget of the agent's gRPC port: how long a connection may take to finish its
// TLS and HTTP/2 handshake, how long an established connection may stay idle, calls per
// connection, message sizes, and a resource quota for gRPC's threads and buffers.
//
// Why: every TCP connection holds a file descriptor. Without a handshake deadline, a peer that
// opens connections and never starts TLS holds one fd each for gRPC's default 120 s, so 500 idle
// sockets cost 500 fds (and, with a LimitNOFILE, lock out the controller). With it they are
// closed after `handshake_timeout`. gRPC 1.51 (Debian 12) has no cap on concurrent incoming
// connections (GRPC_ARG_MAX_ALLOWED_INCOMING_CONNECTIONS arrived in a later release): the agent
// caps them in front of gRPC (agent/net/accept_gate.h), and this deadline bounds how long any
// unauthenticated connection can hold one of the capped places.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstddef>

namespace faultline::agent {

struct ServerLimits {
  // A connection that has not completed TLS and the HTTP/2 preface by then is closed.
  std::chrono::milliseconds handshake_timeout{5000};
  // An established connection with no call for this long is closed (GOAWAY); a client simply
  // reconnects on its next call.
  std::chrono::milliseconds max_connection_idle{std::chrono::minutes(5)};
  // Concurrent calls per connection; a controller needs a handful per fault.
  int max_concurrent_streams = 64;
  int max_receive_message_bytes = 4 * 1024 * 1024;
  int max_send_message_bytes = 4 * 1024 * 1024;
  // gRPC's resource quota: threads it may create and the memory its buffers may take.
  int max_threads = 64;
  size_t max_memory_bytes = 256u * 1024 * 1024;
};

// Applies `limits` to `builder` (before BuildAndStart). Call once per builder. Not thread-safe
// (a builder is used by one thread).
void ApplyServerLimits(grpc::ServerBuilder& builder, const ServerLimits& limits);

}  // namespace faultline::agent
