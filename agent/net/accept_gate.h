#pragma once
// AcceptGate: the agent's public gRPC port, with a hard cap on concurrent connections.
//
// gRPC 1.51 (Debian 12) cannot cap incoming connections, and cannot take accepted fds from us
// with TLS credentials. So the agent's gRPC server listens on a private unix socket (in a 0700
// directory: no other local user can reach it), and the gate listens on the public address.
// For every TCP connection it accepts, the gate either
//   - closes it at once (with a reset) when `max_connections` are already open, or
//   - connects to the gRPC socket and relays bytes both ways until either side ends.
// TLS still terminates in gRPC (client certificates, identity and roles are unchanged), and so do
// gRPC's handshake deadline and idle timeout: when gRPC closes its end, the gate closes the TCP
// connection, which counts toward the cap until then.
//
// The remote address survives the hop: the gate binds its end of each unix connection to an
// abstract name that carries it, so ServerContext::peer() reads
// "unix-abstract:faultline-gate/<pid>/<n>/ipv4:10.77.0.1:53422", and RemoteAddressOfPeer turns
// that back into "ipv4:10.77.0.1:53422" (only a process that can reach the 0700 socket could
// forge such a name).
//
// Runs on a host::EventLoop of its own (agent/host/event_loop.h, the agent's one event-loop
// style): one thread blocked in epoll over non-blocking fds, stopped through the loop's eventfd,
// the accept back-off (host::kAcceptBackoff) on the loop's timer. Each relayed connection
// holds two fds here (plus gRPC's one) and two buffers of `buffer_bytes`.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace faultline::agent::net {

struct AcceptGateOptions {
  // Public address, HOST:PORT (HOST may be bracketed IPv6 or a name; every address it resolves
  // to is bound, all on the same port). Port 0 picks a free one.
  std::string listen;
  // The unix socket gRPC serves on (a path, without "unix:").
  std::string backend_path;
  // Open relayed connections at most; the next one is closed at once. At least 1.
  size_t max_connections = 256;
  // Per direction per connection.
  size_t buffer_bytes = 16 * 1024;
};

// Counters; read from any thread.
struct AcceptGateStats {
  uint64_t open = 0;              // relayed connections now
  uint64_t accepted = 0;          // relayed since start
  uint64_t refused = 0;           // closed at once: the cap was reached
  uint64_t backend_failures = 0;  // closed at once: the gRPC socket did not take the connection
  uint64_t accept_failures = 0;   // accept() failed for lack of fds or memory (listener paused)
};

class AcceptGate {
 public:
  // Binds options.listen and starts the loop thread. Connections are relayed to
  // options.backend_path, which may start listening later (until then each is closed at once and
  // counted in backend_failures). INVALID_ARGUMENT for a malformed address or a zero cap,
  // UNAVAILABLE when the address cannot be resolved or bound.
  static Result<std::unique_ptr<AcceptGate>> Start(const AcceptGateOptions& options);

  ~AcceptGate();  // Stop()
  AcceptGate(const AcceptGate&) = delete;
  AcceptGate& operator=(const AcceptGate&) = delete;

  // The bound port (the one picked when options.listen had port 0).
  uint16_t port() const;

  AcceptGateStats stats() const;

  // Closes the listeners and every relayed connection, and joins the thread. Idempotent; call
  // from any thread but the gate's.
  void Stop();

  struct Impl;

 private:
  explicit AcceptGate(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The remote address a gate relayed for, from the gRPC peer string of the relayed connection
// ("unix-abstract:faultline-gate/…/ipv4:10.77.0.1:53422" → "ipv4:10.77.0.1:53422"). Any other
// peer string is returned unchanged. Pure; never fails.
std::string RemoteAddressOfPeer(const std::string& peer);

// Makes `dir` (mode 0700, owned by this process's user; created when missing, its parent must
// exist) and returns the path of the gRPC socket in it, with any stale socket removed.
// FAILED_PRECONDITION when `dir` is not a directory, is a symlink or belongs to another user, or
// the path is too long for a unix socket; INTERNAL for other I/O errors.
Result<std::string> PrivateSocketPath(const std::string& dir);

}  // namespace faultline::agent::net
