#include "controller/daemon/controller_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>

#include "common/ids.h"
#include "common/tls.h"
#include "controller/experiment/parser.h"
#include "controller/report/report.h"

namespace faultline::daemon {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

v1::RunSummary Summarize(const engine::RunResult& r) {
  v1::RunSummary s;
  s.set_run_id(r.run_id);
  s.set_experiment(r.experiment);
  s.set_verdict(engine::VerdictName(r.verdict));
  s.set_reason(r.reason);
  s.set_exit_code(engine::ExitCodeFor(r.verdict));
  s.set_started_unix_ms(r.started_unix_ms);
  s.set_ended_unix_ms(r.ended_unix_ms);
  s.set_report_text(report::RenderText(r));
  s.set_report_json(report::RenderJson(r));
  return s;
}

}  // namespace

// The server-streaming side of SubmitRun: progress events queued by the run's thread and written
// one at a time. Shared by gRPC (until OnDone) and the run thread.
class ControllerService::RunStream final : public grpc::ServerWriteReactor<v1::RunEvent>,
                                           public std::enable_shared_from_this<RunStream> {
 public:
  void Push(v1::RunEvent event) {
    std::lock_guard lock(mu_);
    if (done_) return;
    out_.push_back(std::move(event));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }
  // Finishes once every queued event is written.
  void Close(const grpc::Status& status) {
    std::lock_guard lock(mu_);
    if (done_ || closing_) return;
    closing_ = true;
    final_ = status;
    if (!writing_) Finish(final_);
  }
  void set_on_cancel(std::function<void()> f) {
    std::lock_guard lock(mu_);
    on_cancel_ = std::move(f);
  }
  void Own(std::shared_ptr<RunStream> self) { self_ = std::move(self); }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(mu_);
    out_.pop_front();
    if (!ok) {
      writing_ = false;
      return;
    }
    if (!out_.empty()) {
      StartWrite(&out_.front());
      return;
    }
    writing_ = false;
    if (closing_) Finish(final_);
  }
  void OnCancel() override {
    std::function<void()> f;
    {
      std::lock_guard lock(mu_);
      f = on_cancel_;
    }
    if (f) f();
  }
  void OnDone() override {
    std::shared_ptr<RunStream> self;
    {
      std::lock_guard lock(mu_);
      done_ = true;
      self.swap(self_);
    }
  }

 private:
  std::mutex mu_;
  std::deque<v1::RunEvent> out_;
  bool writing_ = false;
  bool closing_ = false;
  bool done_ = false;
  grpc::Status final_;
  std::function<void()> on_cancel_;
  std::shared_ptr<RunStream> self_;  // keeps this alive until OnDone
};

ControllerService::ControllerService(AgentRegistry& registry, ControllerServiceOptions options)
    : registry_(registry), options_(std::move(options)) {
  if (options_.store) {
    // Runs a previous incarnation of this controller was executing when it died: their faults
    // expired with their leases, their verdicts are unknown.
    Result<int> interrupted = options_.store->MarkInterrupted(options_.controller_id);
    if (!interrupted.ok()) {
      spdlog::error("run history {}: {}", options_.store->Describe(),
                    interrupted.status().message());
    } else if (*interrupted > 0) {
      spdlog::warn("{} run(s) of an earlier controller process marked interrupted", *interrupted);
    }
  }
}

ControllerService::~ControllerService() {
  std::vector<Worker> threads;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, engine] : active_runs_) engine->Cancel("the controller is stopping");
    threads.swap(threads_);
  }
  for (auto& t : threads) {
    if (t.thread.joinable()) t.thread.join();
  }
}

void ControllerService::Spawn(std::function<void()> work) {
  std::lock_guard lock(mu_);
  // Finished threads are joined here, so the list stays short in a long-lived daemon.
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = threads_.erase(it);
    } else {
      ++it;
    }
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  threads_.push_back(Worker{std::thread([work = std::move(work), done] {
                              work();
                              done->store(true);
                            }),
                            done});
}

grpc::Status ControllerService::Authorize(grpc::CallbackServerContext* ctx, bool agent_rpc,
                                          const char* action) {
  if (options_.plaintext_allow_all) return grpc::Status::OK;
  PeerIdentity peer = IdentifyPeer(*ctx);
  Role needed = agent_rpc ? Role::kAgent : Role::kOperator;
  if (peer.authenticated && peer.role && *peer.role == needed) return grpc::Status::OK;
  std::string why = !peer.authenticated ? "no verified client certificate"
                    : peer.role         ? std::string("role '") + RoleName(*peer.role) + "'"
                                        : "the certificate carries no faultline role";
  spdlog::warn("audit: action={} outcome=PERMISSION_DENIED identity=\"{}\" peer={} reason=\"{}\"",
               action, peer.Describe(), peer.address, why);
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      std::string(action) + " refused: " + why +
                          " (needs a certificate with role " + RoleName(needed) + ")");
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* ControllerService::Attach(
    grpc::CallbackServerContext* ctx) {
  if (grpc::Status denied = Authorize(ctx, true, "Attach"); !denied.ok()) {
    class Refused final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
     public:
      explicit Refused(const grpc::Status& s) { Finish(s); }
      void OnDone() override { delete this; }
    };
    return new Refused(denied);
  }
  return registry_.NewSession(ctx);
}

grpc::ServerWriteReactor<v1::RunEvent>* ControllerService::SubmitRun(
    grpc::CallbackServerContext* ctx, const v1::SubmitRunRequest* request) {
  auto stream = std::make_shared<RunStream>();
  stream->Own(stream);
  if (grpc::Status denied = Authorize(ctx, false, "SubmitRun"); !denied.ok()) {
    stream->Close(denied);
    return stream.get();
  }
  if (halted_) {
    stream->Close(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                               "the controller is halted: no run starts until `faultline resume`"));
    return stream.get();
  }
  auto outcome = std::make_shared<experiment::ParseOutcome>(experiment::ParseExperimentText(
      request->experiment_yaml(),
      request->file_name().empty() ? std::string("<submitted>") : request->file_name()));
  if (!outcome->ok()) {
    std::string errors;
    for (const auto& d : outcome->errors) errors += "\n" + d.ToString();
    stream->Close(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                               "the experiment is invalid; nothing was applied:" + errors));
    return stream.get();
  }
  engine::RunOptions opts;
  opts.run_id = NewRunId();
  opts.lease_ttl = request->lease_ttl_ms() > 0 ? Duration(milliseconds(request->lease_ttl_ms()))
                                               : options_.default_lease_ttl;
  opts.rpc_deadline = options_.rpc_deadline;
  opts.connect = [this](const engine::AgentEndpoint& ep) { return registry_.Connect(ep); };
  const MonoTime origin = SystemClock::Instance().Now();
  std::weak_ptr<RunStream> weak = stream;
  opts.on_progress = [weak, origin](const engine::ProgressEvent& e) {
    if (auto s = weak.lock()) {
      v1::RunEvent ev;
      ev.mutable_progress()->set_elapsed_s(ToSeconds(e.at - origin));
      ev.mutable_progress()->set_phase(e.phase);
      ev.mutable_progress()->set_message(e.message);
      s->Push(std::move(ev));
    }
  };
  auto engine =
      std::make_shared<engine::RunEngine>(*outcome->experiment, registry_.LiveInventory(), opts);
  const std::string run_id = opts.run_id;
  {
    std::lock_guard lock(mu_);
    if (stopping_) {
      stream->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the controller is stopping"));
      return stream.get();
    }
    active_runs_[run_id] = engine;
    v1::RunSummary running;
    running.set_run_id(run_id);
    running.set_experiment(outcome->experiment->name);
    running.set_verdict("RUNNING");
    running.set_started_unix_ms(SystemClock::Instance().WallUnixMs());
    runs_[run_id] = running;
  }
  if (options_.store) {
    store::RunRecord record;
    record.id = run_id;
    record.experiment = outcome->experiment->name;
    record.spec_yaml = request->experiment_yaml();
    record.state = store::RunState::kRunning;
    record.started_unix_ms = SystemClock::Instance().WallUnixMs();
    record.source = "controller";
    record.owner = options_.controller_id;
    if (Status s = options_.store->CreateRun(record); !s.ok()) {
      spdlog::error("run {}: not recorded in {}: {}", run_id, options_.store->Describe(),
                    s.message());
    }
  }
  // The operator's client going away (Ctrl-C) aborts the run, as in direct mode.
  stream->set_on_cancel([engine] { engine->Cancel("the submitting client disconnected"); });
  spdlog::info("run {} submitted: experiment {}", run_id, outcome->experiment->name);
  // Halted between the check above and now: the run must not start.
  if (halted_) engine->Cancel("halted");
  Spawn([this, engine, outcome, stream, run_id] {
    engine::RunResult result = engine->Run();
    v1::RunSummary summary = Summarize(result);
    spdlog::info("run {} finished: {} ({})", run_id, summary.verdict(), summary.reason());
    {
      std::lock_guard lock(mu_);
      active_runs_.erase(run_id);
    }
    RecordRun(summary);
    v1::RunEvent ev;
    *ev.mutable_finished() = std::move(summary);
    stream->Push(std::move(ev));
    stream->Close(grpc::Status::OK);
  });
  return stream.get();
}

void ControllerService::RecordRun(const v1::RunSummary& summary) {
  if (options_.store) {
    if (Status s = options_.store->FinishRun(summary.run_id(), summary.verdict(),
                                             summary.ended_unix_ms(), summary.report_json());
        !s.ok()) {
      spdlog::error("run {}: result not recorded in {}: {}", summary.run_id(),
                    options_.store->Describe(), s.message());
    }
  }
  std::lock_guard lock(mu_);
  runs_[summary.run_id()] = summary;
}

grpc::ServerUnaryReactor* ControllerService::ListAgents(grpc::CallbackServerContext* ctx,
                                                        const v1::ListAgentsRequest* request,
                                                        v1::ListAgentsResponse* response) {
  if (grpc::Status denied = Authorize(ctx, false, "ListAgents"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  for (const AgentSnapshot& a : registry_.List(request->include_gone())) {
    engine::AgentEndpoint ep;
    ep.labels = std::map<std::string, std::string>(a.info.labels().begin(), a.info.labels().end());
    std::map<std::string, std::string> selector(request->selector().begin(),
                                                request->selector().end());
    if (!engine::MatchesSelector(ep, selector)) continue;
    v1::AgentRecord* rec = response->add_agents();
    *rec->mutable_info() = a.info;
    rec->set_live(a.live);
    rec->set_peer(a.peer);
    rec->set_attached_unix_ms(a.attached_unix_ms);
    rec->set_last_seen_unix_ms(a.last_seen_unix_ms);
  }
  return Finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ControllerService::ListFaults(grpc::CallbackServerContext* ctx,
                                                        const v1::ListFleetFaultsRequest* request,
                                                        v1::ListFleetFaultsResponse* response) {
  if (grpc::Status denied = Authorize(ctx, false, "ListFaults"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const bool include_reverted = request->include_reverted();
  Spawn([this, reactor, response, include_reverted] {
    std::vector<std::string> ids;
    for (const AgentSnapshot& a : registry_.List(false)) ids.push_back(a.info.agent_id());
    v1::ControllerCommand list;
    list.mutable_list()->set_include_reverted(include_reverted);
    auto results = registry_.Broadcast(ids, list, options_.fanout_deadline);
    for (size_t i = 0; i < ids.size(); ++i) {
      const auto& r = results[i];
      if (!r.ok() || r->code() != 0) {
        v1::AgentError* e = response->add_unreachable();
        e->set_agent_id(ids[i]);
        e->set_error(r.ok() ? r->message() : r.status().message());
        continue;
      }
      for (const v1::FaultStatus& f : r->list().faults()) {
        v1::FleetFault* ff = response->add_faults();
        ff->set_agent_id(ids[i]);
        *ff->mutable_fault() = f;
      }
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

HaltOutcome ControllerService::HaltAll(const std::string& reason) {
  const MonoTime start = SystemClock::Instance().Now();
  halted_ = true;
  HaltOutcome out;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, engine] : active_runs_) {
      engine->Cancel("halted: " + reason);
      ++out.runs_cancelled;
    }
  }
  spdlog::warn("HALT: {} ({} run(s) cancelled); reverting every fault on every agent", reason,
               out.runs_cancelled);
  std::vector<std::string> ids;
  for (const AgentSnapshot& a : registry_.List(false)) ids.push_back(a.info.agent_id());
  out.agents = static_cast<uint32_t>(ids.size());
  v1::ControllerCommand revert_all;
  revert_all.mutable_revert_all();
  const MonoTime give_up = start + options_.fanout_deadline;
  std::vector<std::string> todo = ids;
  std::map<std::string, std::string> errors;
  while (!todo.empty()) {
    Duration left = give_up - SystemClock::Instance().Now();
    if (left <= Duration::zero()) break;
    auto results = registry_.Broadcast(todo, revert_all, left);
    std::vector<std::string> again;
    for (size_t i = 0; i < todo.size(); ++i) {
      const auto& r = results[i];
      if (r.ok() && r->code() == 0) {
        out.faults_reverted += r->revert_all().reverted_size();
        errors.erase(todo[i]);
        continue;
      }
      errors[todo[i]] = r.ok() ? r->message() : r.status().message();
      // Retry only what may succeed: a stream that broke (the agent reconnects) — the command is
      // idempotent on the agent.
      if (!r.ok() && r.status().code() == StatusCode::kUnavailable &&
          registry_.AwaitLive(todo[i], std::chrono::milliseconds(0))) {
        again.push_back(todo[i]);
      }
    }
    todo.swap(again);
  }
  for (auto& [id, e] : errors) out.failed.emplace_back(id, e);
  out.elapsed = SystemClock::Instance().Now() - start;
  spdlog::warn("HALT done in {}: {} agent(s), {} fault(s) reverted, {} failed",
               FormatDuration(out.elapsed), out.agents, out.faults_reverted, out.failed.size());
  return out;
}

bool ControllerService::ResumeAll() {
  bool was = halted_.exchange(false);
  if (was) spdlog::warn("RESUME: runs may start again");
  return was;
}

grpc::ServerUnaryReactor* ControllerService::Halt(grpc::CallbackServerContext* ctx,
                                                  const v1::HaltRequest* request,
                                                  v1::HaltResponse* response) {
  if (grpc::Status denied = Authorize(ctx, false, "Halt"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  PeerIdentity peer = IdentifyPeer(*ctx);
  std::string reason = request->reason().empty() ? "operator halt" : request->reason();
  reason += " (by " + peer.Describe() + ")";
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  Spawn([this, reactor, response, reason] {
    HaltOutcome out = HaltAll(reason);
    response->set_agents(out.agents);
    response->set_faults_reverted(out.faults_reverted);
    response->set_runs_cancelled(out.runs_cancelled);
    response->set_elapsed_s(ToSeconds(out.elapsed));
    for (auto& [id, e] : out.failed) {
      v1::AgentError* err = response->add_failed();
      err->set_agent_id(id);
      err->set_error(e);
    }
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

grpc::ServerUnaryReactor* ControllerService::Resume(grpc::CallbackServerContext* ctx,
                                                    const v1::ResumeRequest* request,
                                                    v1::ResumeResponse* response) {
  if (grpc::Status denied = Authorize(ctx, false, "Resume"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  response->set_was_halted(ResumeAll());
  return Finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ControllerService::GetRun(grpc::CallbackServerContext* ctx,
                                                    const v1::GetRunRequest* request,
                                                    v1::RunSummary* response) {
  if (grpc::Status denied = Authorize(ctx, false, "GetRun"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  {
    std::lock_guard lock(mu_);
    auto it = runs_.find(request->run_id());
    if (it != runs_.end()) {
      *response = it->second;
      return Finish(ctx, grpc::Status::OK);
    }
  }
  if (!options_.store) {
    return Finish(ctx, ToGrpc(NotFound("no run " + request->run_id() + " on this controller")));
  }
  Result<store::StoredRun> stored = options_.store->GetRun(request->run_id());
  if (!stored.ok()) return Finish(ctx, ToGrpc(stored.status()));
  const store::RunRecord& r = stored->run;
  response->set_run_id(r.id);
  response->set_experiment(r.experiment);
  response->set_verdict(r.state == store::RunState::kFinished      ? r.verdict
                        : r.state == store::RunState::kInterrupted ? "INTERRUPTED"
                                                                   : "RUNNING");
  response->set_started_unix_ms(r.started_unix_ms);
  response->set_ended_unix_ms(r.ended_unix_ms);
  response->set_report_json(r.report_json);
  return Finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ControllerService::ListRuns(grpc::CallbackServerContext* ctx,
                                                      const v1::ListRunsRequest* request,
                                                      v1::ListRunsResponse* response) {
  if (grpc::Status denied = Authorize(ctx, false, "ListRuns"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  std::lock_guard lock(mu_);
  std::vector<const v1::RunSummary*> all;
  for (const auto& [id, s] : runs_) all.push_back(&s);
  std::sort(all.begin(), all.end(),
            [](auto* a, auto* b) { return a->started_unix_ms() > b->started_unix_ms(); });
  size_t limit = request->limit() == 0 ? all.size() : request->limit();
  for (size_t i = 0; i < all.size() && i < limit; ++i) {
    v1::RunSummary* s = response->add_runs();
    *s = *all[i];
    s->clear_report_json();  // the list is a table; GetRun has the reports
  }
  return Finish(ctx, grpc::Status::OK);
}

}  // namespace faultline::daemon
