#pragma once
// ConsoleServer: the game-day console inside faultline-controller (`--console-listen HOST:PORT`),
// serving docs/console-api.md over HTTPS: the embedded page (assets.h), the JSON API over the
// controller's real state (the RunSupervisor's runs and halt, the run store's history and
// schedules, the agent registry), and the live event stream (GET /api/events).
//
// TLS: the controller's certificate and key; client certificates are optional but, when one is
// presented, the handshake verifies it against the fleet CA (`ca_file`). Who the caller is comes
// from ConsoleAuth (console_auth.h): a verified certificate, a bearer token, or a session cookie
// made by POST /api/session. Every response carries the contract's security headers and CSP.
//
// Lifecycle: construct, hand observer() to RunSupervisorOptions::observer (so the live view sees
// every run and halt), create the supervisor, then Start(). Stop() before the supervisor is
// destroyed; the ConsoleServer itself must outlive the supervisor (it is its observer).
//
// Threads: requests are served by a fixed pool (max_streams event streams + a few for the API);
// a ticker publishes live runs and a fleet thread the fleet, while a viewer is connected.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/duration.h"
#include "common/status.h"
#include "controller/console/console_auth.h"
#include "controller/daemon/agent_registry.h"
#include "controller/daemon/run_observer.h"

namespace faultline::daemon {
class RunSupervisor;
}
namespace faultline::store {
class RunStore;
}

namespace faultline::console {

class EventHub;

struct ConsoleServerOptions {
  std::string listen;     // HOST:PORT; port 0 picks a free one
  std::string cert_file;  // PEM: the controller's certificate (chain)
  std::string key_file;   // PEM: its key
  std::string ca_file;    // PEM: the fleet CA for client certificates; empty: none requested
  ConsoleAuth auth;
  Duration session_ttl = std::chrono::hours(12);
  size_t max_sessions = 4096;
  size_t max_streams = 32;    // open event streams; more get 503
  size_t stream_queue = 256;  // events a stream may hold before it is dropped (slow viewer)
  size_t max_body = 16 * 1024;
  Duration tick = std::chrono::milliseconds(500);  // live run updates while a run is active
  Duration fleet_interval = std::chrono::seconds(1);
  Duration keepalive = std::chrono::seconds(15);
};

// What the console reads and commands. `supervisor` is required; `store` may be null (no
// history beyond this process, no schedules, no annotations); `agents` lists the registry.
struct ConsoleBackend {
  daemon::RunSupervisor* supervisor = nullptr;
  store::RunStore* store = nullptr;
  std::function<std::vector<daemon::AgentSnapshot>()> agents;
};

class ConsoleServer {
 public:
  explicit ConsoleServer(ConsoleServerOptions options);
  // Stops serving (Stop()).
  ~ConsoleServer();
  ConsoleServer(const ConsoleServer&) = delete;
  ConsoleServer& operator=(const ConsoleServer&) = delete;

  // The live view's feed: give it to RunSupervisorOptions::observer. Valid for this object's
  // life.
  daemon::RunObserver& observer();

  // Loads the TLS files, binds `listen` and serves from background threads. INVALID_ARGUMENT
  // for a bad address or unreadable/mismatched TLS files (naming the file), UNAVAILABLE when the
  // address cannot be bound, FAILED_PRECONDITION when already started or without a supervisor.
  Status Start(ConsoleBackend backend);
  // Closes every event stream, stops serving and joins the threads. Idempotent.
  void Stop();

  int port() const;
  // HOST:PORT as bound.
  std::string address() const;
  // The event fan-out (tests: how many streams are open).
  EventHub& hub();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace faultline::console
