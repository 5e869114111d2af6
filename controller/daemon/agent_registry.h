#pragma once
// AgentRegistry: the agents attached to this controller. Each agent dials in and keeps one
// Attach stream (controller.proto); the registry knows who is live (a Hello, then a message at
// least every heartbeat interval), their labels and capabilities, and sends them commands down
// their stream with a request id and a deadline. An agent silent for missed_heartbeats intervals
// is dropped: its stream is cancelled and every command waiting on it fails with UNAVAILABLE.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/duration.h"
#include "common/status.h"
#include "controller/engine/agent_client.h"
#include "controller/engine/inventory.h"
#include "faultline/v1/controller.pb.h"

namespace faultline::daemon {

using CommandCallback = std::function<void(Result<v1::CommandResult>)>;

struct AgentRegistryOptions {
  // Told to every agent in its Welcome.
  Duration heartbeat_interval = std::chrono::seconds(1);
  // An agent silent for this many intervals is gone.
  int missed_heartbeats = 3;
  // How often command deadlines are checked (only commands that are due are visited). Silent
  // agents are looked for every max(sweep_interval, heartbeat_interval / 4).
  Duration sweep_interval = std::chrono::milliseconds(20);
  // Most agents the registry holds, live or gone. A Hello from a new id when it is full evicts
  // the agent gone longest; with every one live it is refused with RESOURCE_EXHAUSTED. Streams
  // that have not said Hello yet are capped at the same number.
  size_t max_agents = 4096;
};

// What the registry knows about one agent, live or gone.
struct AgentSnapshot {
  v1::AgentInfo info;
  bool live = false;
  std::string peer;
  int64_t attached_unix_ms = 0;
  int64_t last_seen_unix_ms = 0;
};

class AgentSession;

class AgentRegistry {
 public:
  explicit AgentRegistry(AgentRegistryOptions options = {});
  // Cancels every stream and fails every pending command.
  ~AgentRegistry();
  AgentRegistry(const AgentRegistry&) = delete;
  AgentRegistry& operator=(const AgentRegistry&) = delete;

  // The reactor serving one Attach call (the Controller service's Attach returns it).
  // `certified_id`: the agent id of the peer's certificate (faultline:agent:<id>). Unless
  // `trust_hello` (plaintext on loopback/sandbox only), a stream without one is refused with
  // PERMISSION_DENIED, and a Hello claiming another id too: an agent is only ever registered
  // under the id its certificate carries. Beyond max_agents: RESOURCE_EXHAUSTED.
  grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* NewSession(
      grpc::CallbackServerContext* ctx, bool trust_hello, std::optional<std::string> certified_id);

  // Every agent seen since start (gone ones only with include_gone), sorted by id.
  std::vector<AgentSnapshot> List(bool include_gone) const;
  // Live agents as engine endpoints: name = agent id, address = the peer, labels.
  engine::Inventory LiveInventory() const;
  size_t LiveCount() const;

  // Sends `command` (its request_id is assigned here) to the live agent `agent_id`; `done` is
  // called exactly once, from a gRPC or registry thread: with the agent's result (whose code
  // may be an error), UNAVAILABLE when the agent is not attached or its stream ends first, or
  // DEADLINE_EXCEEDED. Never blocks.
  void Send(const std::string& agent_id, v1::ControllerCommand command, Duration deadline,
            CommandCallback done);

  // Send and wait. Retries on UNAVAILABLE (an agent that reconnects within the deadline gets the
  // same command again: every command is idempotent on the agent, so a retry never
  // double-applies).
  Result<v1::CommandResult> Call(const std::string& agent_id, const v1::ControllerCommand& command,
                                 Duration deadline);

  // Sends `command` to every agent in `agent_ids` at once and waits for every answer (or its
  // deadline): the fan-out behind halt and the fleet's fault list. Results in `agent_ids` order.
  std::vector<Result<v1::CommandResult>> Broadcast(const std::vector<std::string>& agent_ids,
                                                   const v1::ControllerCommand& command,
                                                   Duration deadline);

  // Blocks until `agent_id` is live or `timeout` passes; true when live. For tests and tools.
  bool AwaitLive(const std::string& agent_id, Duration timeout) const;
  // Blocks until at least `count` agents are live or `timeout` passes.
  bool AwaitLiveCount(size_t count, Duration timeout) const;

  // An engine connection to `endpoint` (from LiveInventory) through its Attach stream.
  std::shared_ptr<engine::AgentConnection> Connect(const engine::AgentEndpoint& endpoint);

  const AgentRegistryOptions& options() const { return options_; }

 private:
  friend class AgentSession;
  struct Entry {
    std::shared_ptr<AgentSession> session;  // null when gone
    AgentSnapshot snapshot;
    MonoTime last_seen{};
  };

  // Called by sessions. Admit: OK when `agent_id` may register now (makes room by evicting the
  // agent gone longest), RESOURCE_EXHAUSTED when the registry is full of live agents. OnHello
  // registers the session (checking again) and returns false when it could not.
  Status Admit(const std::string& agent_id);
  bool OnHello(const std::shared_ptr<AgentSession>& session, const v1::AgentInfo& info,
               const std::string& peer);
  // Precondition: mu_ held.
  Status MakeRoomLocked(const std::string& agent_id);
  void OnSeen(const std::string& agent_id, std::optional<uint32_t> active_faults);
  void OnGone(const AgentSession* session);

  std::shared_ptr<AgentSession> FindLive(const std::string& agent_id) const;
  // Called by sessions for each command sent: `session` is visited by the sweep at `deadline`.
  void WatchDeadline(MonoTime deadline, const std::shared_ptr<AgentSession>& session);
  void SweepLoop();

  const AgentRegistryOptions options_;
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::map<std::string, Entry> agents_;  // guarded by mu_
  // Sessions between Attach and Hello, owned here until they finish.
  std::map<const AgentSession*, std::shared_ptr<AgentSession>> sessions_;  // guarded by mu_
  bool stopping_ = false;                                                  // guarded by mu_
  // Commands' deadlines, earliest first (an answered command's entry is simply stale): the sweep
  // visits only the sessions that have one due, not every session (10 000 agents, 50 times/s).
  std::mutex deadlines_mu_;
  std::multimap<MonoTime, std::weak_ptr<AgentSession>> deadlines_;  // guarded by deadlines_mu_
  std::thread sweeper_;
};

}  // namespace faultline::daemon
