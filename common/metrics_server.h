#pragma once
// MetricsServer: a plain-HTTP endpoint that serves one Registry as `GET /metrics` (Prometheus text
// format) and nothing else: every other path is 404, every other method 405. Plain HTTP is
// acceptable because metrics carry no secrets and no request can change anything; it is only
// started when a daemon is asked to (`--metrics-listen HOST:PORT`).

#include <memory>
#include <string>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"

namespace httplib {
class Server;
}

namespace faultline::metrics {

// The content type of the text exposition format 0.0.4.
inline constexpr char kTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Splits "HOST:PORT" ("[v6]:PORT" for IPv6) into host and port. INVALID_ARGUMENT naming `flag`
// for a missing or non-numeric port, a port above 65535 or an empty host.
Status ParseListenAddress(const std::string& flag, const std::string& listen, std::string* host,
                          int* port);

class MetricsServer {
 public:
  // Binds `listen` (HOST:PORT; port 0 picks a free one) and serves `registry` from a background
  // thread. `registry` must outlive the server. INVALID_ARGUMENT for a malformed address,
  // UNAVAILABLE when the address cannot be bound.
  static Result<std::unique_ptr<MetricsServer>> Start(const std::string& listen,
                                                      Registry& registry);
  // Stops serving and joins the thread.
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The bound port (the chosen one when started with port 0).
  int port() const { return port_; }
  // HOST:PORT as bound, for logs ("[::1]:9464" for IPv6).
  std::string address() const;
  // Stops serving and joins the thread. Idempotent.
  void Stop();

 private:
  MetricsServer() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string host_;
  int port_ = 0;
};

}  // namespace faultline::metrics
