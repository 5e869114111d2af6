#include "controller/daemon/agent_registry.h"

#include <spdlog/spdlog.h>

#include <deque>
#include <future>

#include "common/certificates.h"
#include "common/labels.h"
#include "common/logging.h"
#include "common/tls.h"
#include "controller/engine/fan_out.h"

namespace faultline::daemon {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

int64_t WallMs() { return SystemClock::Instance().WallUnixMs(); }

}  // namespace

// One Attach stream. Owned (shared_ptr) by the registry from NewSession until OnDone; commands in
// flight hold it too, so it outlives gRPC's last callback safely.
class AgentSession final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>,
                           public std::enable_shared_from_this<AgentSession> {
 public:
  AgentSession(AgentRegistry* registry, grpc::CallbackServerContext* ctx, bool trust_hello,
               std::optional<std::string> certified_id)
      : registry_(registry),
        peer_(ctx->peer()),
        trust_hello_(trust_hello),
        certified_id_(std::move(certified_id)) {}

  void Start() { StartRead(&in_); }

  const std::string& agent_id() const { return agent_id_; }  // set once, before OnHello

  // Ends the stream (idempotent); commands waiting on it fail when gRPC calls OnDone.
  void FinishOnce(const grpc::Status& status) {
    std::lock_guard lock(mu_);
    if (finish_called_) return;
    finish_called_ = true;
    Finish(status);
  }

  void Send(v1::ControllerCommand command, MonoTime deadline, CommandCallback done) {
    {
      std::lock_guard lock(mu_);
      if (!finish_called_) {
        uint64_t id = ++next_request_id_;
        command.set_request_id(id);
        pending_[id] = Pending{deadline, std::move(done)};
        v1::ControllerMessage message;
        *message.mutable_command() = std::move(command);
        EnqueueLocked(std::move(message));
      } else {
        deadline = MonoTime::min();  // answered below
      }
    }
    if (deadline != MonoTime::min()) {
      registry_->WatchDeadline(deadline, shared_from_this());
      return;
    }
    done(Unavailable("agent " + agent_id_ + " is not attached (its stream ended)"));
  }

  // Fails every command whose deadline has passed.
  void ExpireDeadlines(MonoTime now) {
    std::vector<CommandCallback> expired;
    {
      std::lock_guard lock(mu_);
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.deadline <= now) {
          expired.push_back(std::move(it->second.done));
          it = pending_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& done : expired) {
      done(DeadlineExceeded("agent " + agent_id_ + " did not answer before the deadline"));
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      FinishOnce(grpc::Status::OK);
      return;
    }
    if (!HandleMessage()) return;
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    if (!out_.empty()) out_.pop_front();
    if (!ok || finish_called_) {
      writing_ = false;
      return;
    }
    if (!out_.empty()) {
      StartWrite(&out_.front());
    } else {
      writing_ = false;
    }
  }

  void OnDone() override {
    std::map<uint64_t, Pending> pending;
    {
      std::lock_guard lock(mu_);
      finish_called_ = true;
      pending.swap(pending_);
    }
    for (auto& [id, p] : pending) {
      p.done(Unavailable("agent " + agent_id_ + " went away before answering"));
    }
    registry_->OnGone(this);  // may drop the last reference to this object
  }

 private:
  struct Pending {
    MonoTime deadline;
    CommandCallback done;
  };

  // Precondition: mu_ held.
  void EnqueueLocked(v1::ControllerMessage message) {
    out_.push_back(std::move(message));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }

  // False when the stream was finished because of the message.
  bool HandleMessage() {
    if (agent_id_.empty()) {
      if (!in_.has_hello() || !IsLabelToken(in_.hello().info().agent_id())) {
        spdlog::warn(
            "attach from {} refused: the first message must be a Hello with a valid "
            "agent id",
            peer_);
        FinishOnce(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "the first message must be a Hello with agent_id matching "
                                "[A-Za-z0-9._-]{1,63}"));
        return false;
      }
      const std::string& claimed = in_.hello().info().agent_id();
      if (!trust_hello_ && certified_id_ != claimed) {
        std::string why =
            certified_id_ ? "its certificate is agent " + *certified_id_ + "'s"
                          : std::string("its certificate carries no agent id (faultline:agent:ID)");
        spdlog::warn(
            "audit: action=Attach outcome=PERMISSION_DENIED peer={} claimed_id={} reason=\"{}\"",
            LogSafe(peer_), claimed, why);
        FinishOnce(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                                "attach as agent " + claimed + " refused: " + why +
                                    " (issue one certificate per agent: `faultline certs init "
                                    "DIR --agent ID`)"));
        return false;
      }
      if (Status admitted = registry_->Admit(claimed); !admitted.ok()) {
        spdlog::warn("attach of agent {} from {} refused: {}", claimed, LogSafe(peer_),
                     admitted.message());
        FinishOnce(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, admitted.message()));
        return false;
      }
      agent_id_ = claimed;
      v1::ControllerMessage welcome;
      welcome.mutable_welcome()->set_controller_version(FAULTLINE_VERSION);
      welcome.mutable_welcome()->set_heartbeat_interval_ms(static_cast<uint32_t>(
          duration_cast<milliseconds>(registry_->options().heartbeat_interval).count()));
      {
        std::lock_guard lock(mu_);
        if (!finish_called_) EnqueueLocked(std::move(welcome));
      }
      if (!registry_->OnHello(shared_from_this(), in_.hello().info(), peer_)) {
        FinishOnce(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                "the controller's agent registry is full"));
        return false;
      }
      return true;
    }
    registry_->OnSeen(agent_id_, in_.has_heartbeat()
                                     ? std::optional<uint32_t>(in_.heartbeat().active_faults())
                                     : std::nullopt);
    if (in_.has_result()) {
      CommandCallback done;
      {
        std::lock_guard lock(mu_);
        auto it = pending_.find(in_.result().request_id());
        if (it == pending_.end()) return true;  // answered after its deadline
        done = std::move(it->second.done);
        pending_.erase(it);
      }
      done(std::move(*in_.mutable_result()));
    }
    return true;
  }

  AgentRegistry* const registry_;
  const std::string peer_;
  const bool trust_hello_;
  const std::optional<std::string> certified_id_;
  std::string agent_id_;  // written by the read path only, before OnHello publishes the session
  v1::AgentMessage in_;

  std::mutex mu_;
  std::deque<v1::ControllerMessage> out_;  // guarded by mu_; front is being written
  bool writing_ = false;                   // guarded by mu_
  bool finish_called_ = false;             // guarded by mu_
  uint64_t next_request_id_ = 0;           // guarded by mu_
  std::map<uint64_t, Pending> pending_;    // guarded by mu_
};

// ---------------------------------------------------------------------------------------------

namespace {

// The engine's view of an attached agent: each call is a command on its stream, retried (same
// fault id, so never double-applied) if the agent reconnects within the deadline.
class StreamAgentConnection final : public engine::AgentConnection {
 public:
  StreamAgentConnection(AgentRegistry& registry, engine::AgentEndpoint endpoint)
      : registry_(registry), endpoint_(std::move(endpoint)) {}

  const engine::AgentEndpoint& endpoint() const override { return endpoint_; }

  Result<v1::AgentInfo> GetInfo(Duration deadline) override {
    v1::ControllerCommand c;
    c.mutable_get_info();
    auto r = Do(c, deadline, "GetInfo");
    if (!r.ok()) return r.status();
    return r->info();
  }
  Result<v1::FaultStatus> ApplyFault(const v1::ApplyFaultRequest& request,
                                     Duration deadline) override {
    v1::ControllerCommand c;
    *c.mutable_apply() = request;
    auto r = Do(c, deadline, "ApplyFault");
    if (!r.ok()) return r.status();
    return r->fault();
  }
  Result<v1::FaultStatus> RenewLease(const std::string& fault_id, Duration ttl,
                                     Duration deadline) override {
    v1::ControllerCommand c;
    c.mutable_renew()->set_fault_id(fault_id);
    c.mutable_renew()->set_lease_ttl_ms(
        static_cast<uint32_t>(duration_cast<milliseconds>(ttl).count()));
    auto r = Do(c, deadline, "RenewLease");
    if (!r.ok()) return r.status();
    return r->fault();
  }
  Result<v1::FaultStatus> RevertFault(const std::string& fault_id, Duration deadline) override {
    v1::ControllerCommand c;
    c.mutable_revert()->set_fault_id(fault_id);
    auto r = Do(c, deadline, "RevertFault");
    if (!r.ok()) return r.status();
    return r->fault();
  }
  Result<std::vector<v1::FaultStatus>> ListFaults(bool include_reverted,
                                                  Duration deadline) override {
    v1::ControllerCommand c;
    c.mutable_list()->set_include_reverted(include_reverted);
    auto r = Do(c, deadline, "ListFaults");
    if (!r.ok()) return r.status();
    return std::vector<v1::FaultStatus>(r->list().faults().begin(), r->list().faults().end());
  }

  // One attempt each, down the stream (the engine's FanOut retries): no thread waits.
  void GetInfoAsync(Duration deadline, Done<v1::AgentInfo> done) override {
    v1::ControllerCommand c;
    c.mutable_get_info();
    SendAsync(std::move(c), deadline, "GetInfo", [done = std::move(done)](auto r) {
      if (!r.ok()) return done(r.status());
      done(std::move(*r->mutable_info()));
    });
  }
  void ApplyFaultAsync(const v1::ApplyFaultRequest& request, Duration deadline,
                       Done<v1::FaultStatus> done) override {
    v1::ControllerCommand c;
    *c.mutable_apply() = request;
    SendAsync(std::move(c), deadline, "ApplyFault", FaultOf(std::move(done)));
  }
  void RenewLeaseAsync(const std::string& fault_id, Duration ttl, Duration deadline,
                       Done<v1::FaultStatus> done) override {
    v1::ControllerCommand c;
    c.mutable_renew()->set_fault_id(fault_id);
    c.mutable_renew()->set_lease_ttl_ms(
        static_cast<uint32_t>(duration_cast<milliseconds>(ttl).count()));
    SendAsync(std::move(c), deadline, "RenewLease", FaultOf(std::move(done)));
  }
  void RevertFaultAsync(const std::string& fault_id, Duration deadline,
                        Done<v1::FaultStatus> done) override {
    v1::ControllerCommand c;
    c.mutable_revert()->set_fault_id(fault_id);
    SendAsync(std::move(c), deadline, "RevertFault", FaultOf(std::move(done)));
  }

 private:
  static CommandCallback FaultOf(Done<v1::FaultStatus> done) {
    return [done = std::move(done)](Result<v1::CommandResult> r) {
      if (!r.ok()) return done(r.status());
      done(std::move(*r->mutable_fault()));
    };
  }
  // Like Do, without waiting: the agent's error code becomes the Status.
  void SendAsync(v1::ControllerCommand c, Duration deadline, const char* what,
                 CommandCallback done) {
    registry_.Send(
        endpoint_.name, std::move(c), deadline,
        [what, name = endpoint_.name, done = std::move(done)](Result<v1::CommandResult> r) {
          if (!r.ok()) {
            return done(Status(r.status().code(), std::string(what) + " on agent " + name + ": " +
                                                      r.status().message()));
          }
          if (r->code() != 0) {
            return done(Status(static_cast<StatusCode>(r->code()),
                               std::string(what) + " on agent " + name + ": " + r->message()));
          }
          done(std::move(r));
        });
  }
  Result<v1::CommandResult> Do(const v1::ControllerCommand& c, Duration deadline,
                               const char* what) {
    auto r = registry_.Call(endpoint_.name, c, deadline);
    if (!r.ok()) {
      return Status(r.status().code(), std::string(what) + " on agent " + endpoint_.name + ": " +
                                           r.status().message());
    }
    if (r->code() != 0) {
      return Status(static_cast<StatusCode>(r->code()),
                    std::string(what) + " on agent " + endpoint_.name + ": " + r->message());
    }
    return r;
  }

  AgentRegistry& registry_;
  engine::AgentEndpoint endpoint_;
};

}  // namespace

// ---------------------------------------------------------------------------------------------

AgentRegistry::AgentRegistry(AgentRegistryOptions options) : options_(std::move(options)) {
  sweeper_ = std::thread([this] { SweepLoop(); });
}

AgentRegistry::~AgentRegistry() {
  std::vector<std::shared_ptr<AgentSession>> sessions;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [ptr, s] : sessions_) sessions.push_back(s);
  }
  changed_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  for (auto& s : sessions) {
    s->FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the controller is stopping"));
  }
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* AgentRegistry::NewSession(
    grpc::CallbackServerContext* ctx, bool trust_hello, std::optional<std::string> certified_id) {
  class Refused final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
   public:
    explicit Refused(const grpc::Status& s) { Finish(s); }
    void OnDone() override { delete this; }
  };
  if (!trust_hello && !certified_id) {
    spdlog::warn(
        "audit: action=Attach outcome=PERMISSION_DENIED peer={} reason=\"the certificate carries "
        "no agent id\"",
        LogSafe(ctx->peer()));
    return new Refused(grpc::Status(
        grpc::StatusCode::PERMISSION_DENIED,
        "Attach refused: the certificate carries no agent id (faultline:agent:ID); issue one "
        "certificate per agent (`faultline certs init DIR --agent ID`)"));
  }
  auto session = std::make_shared<AgentSession>(this, ctx, trust_hello, std::move(certified_id));
  {
    std::lock_guard lock(mu_);
    // Streams that never say Hello must not pile up either.
    if (sessions_.size() >= 2 * options_.max_agents) {
      return new Refused(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                      "too many agent streams open at this controller"));
    }
    sessions_[session.get()] = session;
  }
  session->Start();
  return session.get();
}

Status AgentRegistry::MakeRoomLocked(const std::string& agent_id) {
  if (agents_.count(agent_id) != 0 || agents_.size() < options_.max_agents) return Status::Ok();
  auto oldest = agents_.end();
  for (auto it = agents_.begin(); it != agents_.end(); ++it) {
    if (it->second.snapshot.live || it->second.session) continue;
    if (oldest == agents_.end() || it->second.last_seen < oldest->second.last_seen) oldest = it;
  }
  if (oldest == agents_.end()) {
    return ResourceExhausted("the controller's agent registry is full (" +
                             std::to_string(options_.max_agents) +
                             " live agents; raise --max-agents)");
  }
  agents_.erase(oldest);
  return Status::Ok();
}

Status AgentRegistry::Admit(const std::string& agent_id) {
  std::lock_guard lock(mu_);
  return MakeRoomLocked(agent_id);
}

bool AgentRegistry::OnHello(const std::shared_ptr<AgentSession>& session, const v1::AgentInfo& info,
                            const std::string& peer) {
  std::shared_ptr<AgentSession> replaced;
  {
    std::lock_guard lock(mu_);
    if (!MakeRoomLocked(info.agent_id()).ok()) return false;
    Entry& e = agents_[info.agent_id()];
    if (e.session && e.session != session) replaced = e.session;
    e.session = session;
    e.snapshot.info = info;
    e.snapshot.live = true;
    e.snapshot.peer = peer;
    e.snapshot.attached_unix_ms = WallMs();
    e.snapshot.last_seen_unix_ms = e.snapshot.attached_unix_ms;
    e.last_seen = SystemClock::Instance().Now();
  }
  changed_.notify_all();
  if (replaced) {
    replaced->FinishOnce(
        grpc::Status(grpc::StatusCode::ABORTED, "replaced by a newer stream of the same agent"));
  }
  spdlog::info("agent attached: id={} peer={} capabilities={} active_faults={}", info.agent_id(),
               LogSafe(peer), info.capabilities_size(), info.active_faults());
  return true;
}

void AgentRegistry::OnSeen(const std::string& agent_id, std::optional<uint32_t> active_faults) {
  std::lock_guard lock(mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end()) return;
  if (active_faults) it->second.snapshot.info.set_active_faults(*active_faults);
  it->second.last_seen = SystemClock::Instance().Now();
  it->second.snapshot.last_seen_unix_ms = WallMs();
}

void AgentRegistry::OnGone(const AgentSession* session) {
  std::shared_ptr<AgentSession> keep;  // released after the lock, possibly the last reference
  bool was_live = false;
  std::string id;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(session);
    if (it != sessions_.end()) {
      keep = it->second;
      sessions_.erase(it);
    }
    id = session->agent_id();
    auto e = agents_.find(id);
    if (!id.empty() && e != agents_.end() && e->second.session.get() == session) {
      e->second.session.reset();
      was_live = e->second.snapshot.live;
      e->second.snapshot.live = false;
    }
  }
  changed_.notify_all();
  if (was_live) spdlog::warn("agent detached: id={}", id);
}

std::shared_ptr<AgentSession> AgentRegistry::FindLive(const std::string& agent_id) const {
  std::lock_guard lock(mu_);
  auto it = agents_.find(agent_id);
  if (it == agents_.end() || !it->second.snapshot.live) return nullptr;
  return it->second.session;
}

std::vector<AgentSnapshot> AgentRegistry::List(bool include_gone) const {
  std::lock_guard lock(mu_);
  std::vector<AgentSnapshot> out;
  for (const auto& [id, e] : agents_) {
    if (e.snapshot.live || include_gone) out.push_back(e.snapshot);
  }
  return out;
}

engine::Inventory AgentRegistry::LiveInventory() const {
  engine::Inventory inv;
  for (const AgentSnapshot& a : List(false)) {
    engine::AgentEndpoint ep;
    ep.name = a.info.agent_id();
    ep.address = a.peer;
    ep.labels = std::map<std::string, std::string>(a.info.labels().begin(), a.info.labels().end());
    inv.agents.push_back(std::move(ep));
  }
  return inv;
}

size_t AgentRegistry::LiveCount() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [id, e] : agents_) n += e.snapshot.live ? 1 : 0;
  return n;
}

void AgentRegistry::Send(const std::string& agent_id, v1::ControllerCommand command,
                         Duration deadline, CommandCallback done) {
  auto session = FindLive(agent_id);
  if (!session) {
    done(Unavailable("agent " + agent_id + " is not attached to this controller"));
    return;
  }
  session->Send(std::move(command), SystemClock::Instance().Now() + deadline, std::move(done));
}

Result<v1::CommandResult> AgentRegistry::Call(const std::string& agent_id,
                                              const v1::ControllerCommand& command,
                                              Duration deadline) {
  const MonoTime give_up = SystemClock::Instance().Now() + deadline;
  while (true) {
    auto promise = std::make_shared<std::promise<Result<v1::CommandResult>>>();
    auto future = promise->get_future();
    Duration left = give_up - SystemClock::Instance().Now();
    Send(agent_id, command, left,
         [promise](Result<v1::CommandResult> r) { promise->set_value(std::move(r)); });
    Result<v1::CommandResult> r = future.get();
    if (r.ok() || r.status().code() != StatusCode::kUnavailable) return r;
    // The stream broke or the agent is between streams: wait for it to attach again and resend.
    left = give_up - SystemClock::Instance().Now();
    if (left <= Duration::zero() || !AwaitLive(agent_id, left)) return r;
  }
}

std::vector<Result<v1::CommandResult>> AgentRegistry::Broadcast(
    const std::vector<std::string>& agent_ids, const v1::ControllerCommand& command,
    Duration deadline) {
  // Every agent at once, one attempt each: the caller (halt) retries with the time it has left.
  engine::FanOutOptions options;
  options.max_in_flight = std::max<size_t>(1, agent_ids.size());
  options.attempt_deadline = deadline;
  options.max_attempts = 1;
  return engine::FanOut<v1::CommandResult>(
      agent_ids.size(),
      [&](size_t i, Duration attempt_deadline, CommandCallback done) {
        Send(agent_ids[i], command, attempt_deadline, std::move(done));
      },
      options);
}

bool AgentRegistry::AwaitLive(const std::string& agent_id, Duration timeout) const {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, timeout, [&] {
    auto it = agents_.find(agent_id);
    return stopping_ || (it != agents_.end() && it->second.snapshot.live);
  }) && !stopping_;
}

bool AgentRegistry::AwaitLiveCount(size_t count, Duration timeout) const {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, timeout, [&] {
    size_t n = 0;
    for (const auto& [id, e] : agents_) n += e.snapshot.live ? 1 : 0;
    return stopping_ || n >= count;
  }) && !stopping_;
}

std::shared_ptr<engine::AgentConnection> AgentRegistry::Connect(
    const engine::AgentEndpoint& endpoint) {
  return std::make_shared<StreamAgentConnection>(*this, endpoint);
}

void AgentRegistry::WatchDeadline(MonoTime deadline, const std::shared_ptr<AgentSession>& session) {
  std::lock_guard lock(deadlines_mu_);
  deadlines_.emplace(deadline, session);
}

void AgentRegistry::SweepLoop() {
  const Duration silence_limit = options_.heartbeat_interval * options_.missed_heartbeats;
  const Duration silence_scan = std::max(options_.sweep_interval, options_.heartbeat_interval / 4);
  MonoTime next_silence_scan = SystemClock::Instance().Now();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    changed_.wait_for(lock, options_.sweep_interval, [&] { return stopping_; });
    if (stopping_) break;
    MonoTime now = SystemClock::Instance().Now();
    std::vector<std::shared_ptr<AgentSession>> all, silent;
    if (now >= next_silence_scan) {
      next_silence_scan = now + silence_scan;
      for (auto& [id, e] : agents_) {
        if (e.snapshot.live && e.session && now - e.last_seen > silence_limit) {
          silent.push_back(e.session);
          e.snapshot.live = false;  // gone now, even before gRPC reports the stream's end
        }
      }
    }
    lock.unlock();
    {
      // Sessions with a command due (several entries of one session: visited once).
      std::lock_guard deadlines_lock(deadlines_mu_);
      auto due_end = deadlines_.upper_bound(now);
      for (auto it = deadlines_.begin(); it != due_end; ++it) {
        if (auto s = it->second.lock()) {
          if (all.empty() || all.back() != s) all.push_back(std::move(s));
        }
      }
      deadlines_.erase(deadlines_.begin(), due_end);
    }
    for (auto& s : silent) {
      spdlog::warn("agent {} missed {} heartbeats: dropping its stream", s->agent_id(),
                   options_.missed_heartbeats);
      s->FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE, "heartbeat lost"));
    }
    for (auto& s : all) s->ExpireDeadlines(now);
    if (!silent.empty()) changed_.notify_all();
    all.clear();
    silent.clear();
    lock.lock();
  }
}

}  // namespace faultline::daemon
