#pragma once
// Internal to the DNS interceptor: DNS over TCP. Accepted connections are served by a bounded
// pool of worker threads (at most options.max_tcp_connections, started as needed, joined at
// Stop; none is ever detached). A connection is read frame by frame (2-byte length, then the
// message, partial reads and writes resumed), with an idle deadline for the next frame
// (tcp_idle_timeout_ms) and an I/O deadline within one; every wait also watches the stop fd.

#include <condition_variable>
#include <deque>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/dns/internal/interceptor_core.h"

namespace faultline::agent::dns::internal {

class DnsTcpServer {
 public:
  explicit DnsTcpServer(InterceptorCore& core) : core_(core) {}
  // Stops (see Stop).
  ~DnsTcpServer();
  DnsTcpServer(const DnsTcpServer&) = delete;
  DnsTcpServer& operator=(const DnsTcpServer&) = delete;

  // Takes an accepted, non-blocking connection that arrived on a listener of `scope`. false at
  // the connection cap: the fd is left to the caller (which closes and counts it). Thread-safe.
  bool Submit(int fd, std::string scope);
  // Ends every connection and joins the workers: they return at once once core.stop_fd is
  // written (write it first). Queued connections are closed. Idempotent.
  void Stop();
  // Connections being served or waiting for a worker.
  int connections() const;

 private:
  void Work();
  void Serve(int fd, const std::string& scope);
  Result<DnsWire> Forward(std::span<const uint8_t> message, const SocketAddress& upstream);

  InterceptorCore& core_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<int, std::string>> queue_;  // guarded by mu_
  std::vector<std::thread> workers_;               // guarded by mu_
  int busy_ = 0;                                   // guarded by mu_
  int idle_ = 0;                                   // workers waiting; guarded by mu_
  bool stopping_ = false;                          // guarded by mu_
};

}  // namespace faultline::agent::dns::internal
