#include "common/metrics_server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>

namespace faultline::metrics {

Status ParseListenAddress(const std::string& flag, const std::string& listen, std::string* host,
                          int* port) {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == listen.size()) {
    return InvalidArgument(flag + " '" + listen + "': want HOST:PORT");
  }
  std::string h = listen.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string p = listen.substr(colon + 1);
  if (h.empty()) return InvalidArgument(flag + " '" + listen + "': the host is empty");
  if (p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535) {
    return InvalidArgument(flag + " '" + listen + "': port must be 0-65535");
  }
  *host = h;
  *port = std::stoi(p);
  return Status::Ok();
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen,
                                                            Registry& registry) {
  std::string host;
  int port = 0;
  if (Status s = ParseListenAddress("--metrics-listen", listen, &host, &port); !s.ok()) return s;
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->server_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *server->server_;
  // Scrapes are rare and cheap: two workers are plenty and keep the daemon's thread count low.
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // A slow or silent client must not hold one of the two workers for long.
  http.set_read_timeout(2, 0);
  http.set_write_timeout(2, 0);
  http.set_keep_alive_max_count(1);
  http.set_keep_alive_timeout(1);
  http.set_payload_max_length(4096);
  // httplib's default also sets SO_REUSEPORT, which would let a second process bind the same port
  // and take half the scrapes; a busy port must be an error instead.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http.Get("/metrics", [&registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry.Render(), kTextContentType);
  });
  // Anything but GET /metrics: nothing else is served.
  auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET");
    res.set_content("only GET /metrics\n", "text/plain");
  };
  for (const char* pattern : {"/metrics"}) {
    http.Post(pattern, not_allowed);
    http.Put(pattern, not_allowed);
    http.Delete(pattern, not_allowed);
    http.Patch(pattern, not_allowed);
  }
  http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.status == 404) res.set_content("not found: only GET /metrics\n", "text/plain");
  });
  int bound = port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) {
    return Unavailable("--metrics-listen '" + listen +
                       "': cannot bind (address in use or not "
                       "on this host)");
  }
  server->host_ = host;
  server->port_ = bound;
  auto finished = std::make_shared<std::atomic<bool>>(false);
  server->thread_ = std::thread([&http, finished] {
    http.listen_after_bind();
    *finished = true;
  });
  // httplib's stop() is a no-op until the accept loop runs; wait for it so Stop() cannot hang.
  // The socket already listens, so no connection is lost meanwhile.
  while (!http.is_running() && !*finished)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return server;
}

MetricsServer::~MetricsServer() { Stop(); }

void MetricsServer::Stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string MetricsServer::address() const {
  bool v6 = host_.find(':') != std::string::npos;
  return (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_);
}

}  // namespace faultline::metrics
