#pragma once
// Private to console_server.cpp and console_routes.cpp: the server's state and the request
// pipeline (security headers, CSRF rule, body bound, authentication, role check, audit, JSON
// errors) every route goes through.

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "controller/console/console_server.h"
#include "controller/console/event_hub.h"
#include "controller/console/live_runs.h"

namespace faultline::console {

// Who may call a route.
enum class Access { kPublic, kAuthenticated, kViewer, kOperator };

// One authenticated request as a route sees it.
struct Call {
  const httplib::Request& req;
  Principal who;        // empty for a public route
  std::string peer;     // "addr:port"
  nlohmann::json body;  // the parsed JSON body of a POST (an object), else null
};

// A route's outcome: a status code and a body (JSON unless content_type says otherwise).
struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  // The handler prepared `res` itself (the event stream's content provider): leave it alone.
  bool prepared = false;
};

using RouteFn = std::function<Reply(Call&, httplib::Response&)>;

struct ConsoleServer::Impl {
  explicit Impl(ConsoleServerOptions o);

  // Registers every route of docs/console-api.md (console_routes.cpp).
  void RegisterRoutes();
  // Adds a route: `action` names it in the audit log and `what` in a refusal ("halt the fleet").
  void Route(const std::string& method, const std::string& pattern, Access access,
             const std::string& action, const std::string& what, RouteFn fn);
  // The caller, or the reason there is none (401's message).
  Result<Principal> Authenticate(const httplib::Request& req);
  void Audit(const std::string& action, const std::string& target, const Principal& who,
             const std::string& peer, bool allowed, const std::string& detail);
  // GET /api/events.
  void ServeEvents(Call& call, httplib::Response& res);
  std::string HelloJson(const Principal& who);
  void TickerLoop();
  void FleetLoop();
  std::string FleetNow();

  ConsoleServerOptions options;
  ConsoleBackend backend;
  SessionTable sessions;
  EventHub hub;
  LiveRuns live;
  std::unique_ptr<httplib::SSLServer> http;
  std::string host;
  int port = 0;
  std::thread serve_thread, ticker_thread, fleet_thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;  // guarded by mu
  bool started = false;   // guarded by mu
};

// Error replies: {"error": message}.
Reply ErrorReply(int status, const std::string& message);
// The HTTP status of a Status code (INVALID_ARGUMENT 400, NOT_FOUND 404, FAILED_PRECONDITION
// 409, PERMISSION_DENIED 403, UNAUTHENTICATED 401, UNAVAILABLE/RESOURCE_EXHAUSTED 503, else 500).
int HttpStatusOf(StatusCode code);
Reply StatusReply(const Status& status);
// The contract's security headers (every response).
void SetSecurityHeaders(httplib::Response& res);

}  // namespace faultline::console
