#include "controller/daemon/controller_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>

#include "common/grpc_status.h"
#include "common/ids.h"
#include "common/tls.h"
#include "controller/daemon/store_proto.h"
#include "controller/experiment/parser.h"
#include "controller/report/report.h"
#include "controller/schedule/scheduler.h"

namespace faultline::daemon {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

grpc::Status ToGrpc(const Status& s) { return ToGrpcStatus(s); }

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
  // Runs `f` on cancellation, or now when the client already went away.
  void set_on_cancel(std::function<void()> f) {
    {
      std::lock_guard lock(mu_);
      if (!cancelled_) {
        on_cancel_ = std::move(f);
        return;
      }
    }
    f();
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
      cancelled_ = true;
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
  bool cancelled_ = false;
  grpc::Status final_;
  std::function<void()> on_cancel_;
  std::shared_ptr<RunStream> self_;  // keeps this alive until OnDone
};

ControllerService::ControllerService(AgentRegistry& registry, ControllerServiceOptions options)
    : registry_(registry), options_(std::move(options)) {
  if (options_.store) {
    schedules_ = schedule::MakeStoreScheduleService(*options_.store);
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

Result<std::string> ControllerService::StartRun(RunRequest request) {
  if (halted_) {
    return FailedPrecondition("the controller is halted: no run starts until `faultline resume`");
  }
  auto outcome = std::make_shared<experiment::ParseOutcome>(experiment::ParseExperimentText(
      request.experiment_yaml,
      request.file_name.empty() ? std::string("<submitted>") : request.file_name));
  if (!outcome->ok()) {
    std::string errors;
    for (const auto& d : outcome->errors) errors += "\n" + d.ToString();
    return InvalidArgument("the experiment is invalid; nothing was applied:" + errors);
  }
  engine::RunOptions opts;
  opts.run_id = NewRunId();
  opts.lease_ttl =
      request.lease_ttl > Duration::zero() ? request.lease_ttl : options_.default_lease_ttl;
  opts.rpc_deadline = options_.rpc_deadline;
  opts.connect = [this](const engine::AgentEndpoint& ep) { return registry_.Connect(ep); };
  opts.on_progress = std::move(request.on_progress);
  auto engine =
      std::make_shared<engine::RunEngine>(*outcome->experiment, registry_.LiveInventory(), opts);
  const std::string run_id = opts.run_id;
  const int64_t started = SystemClock::Instance().WallUnixMs();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Unavailable("the controller is stopping");
    active_runs_[run_id] = engine;
    v1::RunSummary running;
    running.set_run_id(run_id);
    running.set_experiment(outcome->experiment->name);
    running.set_verdict("RUNNING");
    running.set_started_unix_ms(started);
    running.set_state(store::RunStateName(store::RunState::kRunning));
    running.set_source(request.source);
    running.set_owner(options_.controller_id);
    runs_[run_id] = running;
  }
  if (options_.store) {
    store::RunRecord record;
    record.id = run_id;
    record.experiment = outcome->experiment->name;
    record.spec_yaml = request.experiment_yaml;
    record.state = store::RunState::kRunning;
    record.started_unix_ms = started;
    record.source = request.source;
    record.owner = options_.controller_id;
    if (Status s = options_.store->CreateRun(record); !s.ok()) {
      spdlog::error("run {}: not recorded in {}: {}", run_id, options_.store->Describe(),
                    s.message());
    }
  }
  spdlog::info("run {} started ({}): experiment {}", run_id, request.source,
               outcome->experiment->name);
  // Halted between the check above and now: the run must not start.
  if (halted_) engine->Cancel("halted");
  Spawn([this, engine, outcome, run_id, on_finished = std::move(request.on_finished)] {
    engine::RunResult result = engine->Run();
    if (options_.on_run_finished) options_.on_run_finished(result);
    v1::RunSummary summary = Summarize(result);
    spdlog::info("run {} finished: {} ({})", run_id, summary.verdict(), summary.reason());
    {
      std::lock_guard lock(mu_);
      active_runs_.erase(run_id);
      summary.set_source(runs_[run_id].source());
      summary.set_owner(options_.controller_id);
    }
    summary.set_state(store::RunStateName(store::RunState::kFinished));
    RecordRun(summary);
    if (on_finished) on_finished(std::move(summary));
  });
  return run_id;
}

bool ControllerService::CancelRun(const std::string& run_id, const std::string& reason) {
  std::lock_guard lock(mu_);
  auto it = active_runs_.find(run_id);
  if (it == active_runs_.end()) return false;
  it->second->Cancel(reason);
  return true;
}

grpc::ServerWriteReactor<v1::RunEvent>* ControllerService::SubmitRun(
    grpc::CallbackServerContext* ctx, const v1::SubmitRunRequest* request) {
  auto stream = std::make_shared<RunStream>();
  stream->Own(stream);
  if (grpc::Status denied = Authorize(ctx, false, "SubmitRun"); !denied.ok()) {
    stream->Close(denied);
    return stream.get();
  }
  RunRequest run;
  run.experiment_yaml = request->experiment_yaml();
  run.file_name = request->file_name();
  run.lease_ttl = Duration(milliseconds(request->lease_ttl_ms()));
  run.source = "controller";
  const MonoTime origin = SystemClock::Instance().Now();
  std::weak_ptr<RunStream> weak = stream;
  run.on_progress = [weak, origin](const engine::ProgressEvent& e) {
    if (auto s = weak.lock()) {
      v1::RunEvent ev;
      ev.mutable_progress()->set_elapsed_s(ToSeconds(e.at - origin));
      ev.mutable_progress()->set_phase(e.phase);
      ev.mutable_progress()->set_message(e.message);
      s->Push(std::move(ev));
    }
  };
  run.on_finished = [stream](v1::RunSummary summary) {
    v1::RunEvent ev;
    *ev.mutable_finished() = std::move(summary);
    stream->Push(std::move(ev));
    stream->Close(grpc::Status::OK);
  };
  Result<std::string> started = StartRun(std::move(run));
  if (!started.ok()) {
    stream->Close(ToGrpc(started.status()));
    return stream.get();
  }
  // The operator's client going away (Ctrl-C) aborts the run, as in direct mode. The engine,
  // not the service, is captured: the stream may outlive the service.
  std::shared_ptr<engine::RunEngine> engine;
  {
    std::lock_guard lock(mu_);
    if (auto it = active_runs_.find(*started); it != active_runs_.end()) engine = it->second;
  }
  if (engine) {
    stream->set_on_cancel([engine] { engine->Cancel("the submitting client disconnected"); });
  }
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
  HaltOutcome out = HaltHere(reason);
  if (options_.store) {
    std::lock_guard lock(halt_mu_);
    if (Status s = schedule::RecordHalt(*options_.store, options_.controller_id); !s.ok()) {
      spdlog::error("HALT not recorded in {} (other controllers on it do not halt): {}",
                    options_.store->Describe(), s.message());
    } else {
      store_halt_seen_ = true;
    }
  }
  return out;
}

void ControllerService::SyncHaltWithStore() {
  if (!options_.store) return;
  std::lock_guard lock(halt_mu_);
  Result<bool> recorded = schedule::HaltRecorded(*options_.store);
  if (!recorded.ok()) {
    spdlog::warn("halt state in {}: {}", options_.store->Describe(), recorded.status().message());
    return;
  }
  if (*recorded == store_halt_seen_) return;
  store_halt_seen_ = *recorded;
  if (*recorded && !halted_) {
    HaltHere("halt recorded in " + options_.store->Describe() + " by another controller");
  } else if (!*recorded && halted_.exchange(false)) {
    spdlog::warn("RESUME (lifted in {}): runs may start again", options_.store->Describe());
  }
}

HaltOutcome ControllerService::HaltHere(const std::string& reason) {
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
  bool was = false;
  if (options_.store) {
    std::lock_guard lock(halt_mu_);
    Result<bool> recorded = schedule::HaltRecorded(*options_.store);
    was = recorded.ok() && *recorded;
    if (Status s = schedule::ClearHalt(*options_.store); !s.ok()) {
      spdlog::error("RESUME not recorded in {} (other controllers there stay halted): {}",
                    options_.store->Describe(), s.message());
    } else {
      store_halt_seen_ = false;
    }
  }
  was = halted_.exchange(false) || was;
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

grpc::Status ControllerService::NeedStore(const char* action) const {
  if (options_.store) return grpc::Status::OK;
  return grpc::Status(
      grpc::StatusCode::FAILED_PRECONDITION,
      std::string(action) + ": this controller has no store (started with --store none)");
}

grpc::ServerUnaryReactor* ControllerService::GetRun(grpc::CallbackServerContext* ctx,
                                                    const v1::GetRunRequest* request,
                                                    v1::RunSummary* response) {
  if (grpc::Status denied = Authorize(ctx, false, "GetRun"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  {
    // This process's runs carry their text report too.
    std::lock_guard lock(mu_);
    auto it = runs_.find(request->run_id());
    if (it != runs_.end() && (!options_.store || it->second.verdict() != "RUNNING")) {
      *response = it->second;
    }
  }
  if (!options_.store) {
    if (!response->run_id().empty()) return Finish(ctx, grpc::Status::OK);
    return Finish(ctx, ToGrpc(NotFound("no run " + request->run_id() + " on this controller")));
  }
  // The store has the annotations, and the state other controllers (or a restart) gave the run.
  Result<store::StoredRun> stored = options_.store->GetRun(request->run_id());
  if (!stored.ok()) {
    if (!response->run_id().empty()) return Finish(ctx, grpc::Status::OK);
    return Finish(ctx, ToGrpc(stored.status()));
  }
  std::string text = response->report_text();
  int32_t exit_code = response->exit_code();
  std::string reason = response->reason();
  *response = RunToProto(stored->run);
  response->set_report_text(text);
  response->set_exit_code(exit_code);
  response->set_reason(reason);
  for (const auto& a : stored->annotations) *response->add_annotations() = AnnotationToProto(a);
  return Finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ControllerService::ListRuns(grpc::CallbackServerContext* ctx,
                                                      const v1::ListRunsRequest* request,
                                                      v1::ListRunsResponse* response) {
  if (grpc::Status denied = Authorize(ctx, false, "ListRuns"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  if (options_.store) {
    store::RunFilter filter;
    filter.limit = static_cast<int>(std::min<uint32_t>(request->limit(), 1'000'000));
    filter.experiment = request->experiment();
    auto runs = options_.store->ListRuns(filter);
    if (!runs.ok()) return Finish(ctx, ToGrpc(runs.status()));
    for (const auto& r : *runs) *response->add_runs() = RunToProto(r);
    return Finish(ctx, grpc::Status::OK);
  }
  std::lock_guard lock(mu_);
  std::vector<const v1::RunSummary*> all;
  for (const auto& [id, s] : runs_) {
    if (request->experiment().empty() || s.experiment() == request->experiment()) {
      all.push_back(&s);
    }
  }
  std::sort(all.begin(), all.end(),
            [](auto* a, auto* b) { return a->started_unix_ms() > b->started_unix_ms(); });
  size_t limit = request->limit() == 0 ? all.size() : request->limit();
  for (size_t i = 0; i < all.size() && i < limit; ++i) {
    v1::RunSummary* s = response->add_runs();
    *s = *all[i];
    s->clear_report_json();  // the list is a table; GetRun has the reports
    s->clear_report_text();
  }
  return Finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ControllerService::AnnotateRun(grpc::CallbackServerContext* ctx,
                                                         const v1::AnnotateRunRequest* request,
                                                         v1::RunAnnotation* response) {
  if (grpc::Status denied = Authorize(ctx, false, "AnnotateRun"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  if (grpc::Status s = NeedStore("AnnotateRun"); !s.ok()) return Finish(ctx, s);
  if (request->run_id().empty()) {
    return Finish(ctx, ToGrpc(InvalidArgument("run_id: required")));
  }
  if (request->text().empty()) return Finish(ctx, ToGrpc(InvalidArgument("text: required")));
  if (request->text().size() > 4096) {
    return Finish(ctx, ToGrpc(InvalidArgument("text: longer than 4096 bytes")));
  }
  if (request->author().size() > 256) {
    return Finish(ctx, ToGrpc(InvalidArgument("author: longer than 256 bytes")));
  }
  auto stored = options_.store->GetRun(request->run_id());  // resolves a prefix
  if (!stored.ok()) return Finish(ctx, ToGrpc(stored.status()));
  store::Annotation note;
  note.run_id = stored->run.id;
  note.author = request->author().empty() ? IdentifyPeer(*ctx).Describe() : request->author();
  note.text = request->text();
  auto added = options_.store->AddAnnotation(note);
  if (!added.ok()) return Finish(ctx, ToGrpc(added.status()));
  *response = AnnotationToProto(*added);
  return Finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ControllerService::AddSchedule(grpc::CallbackServerContext* ctx,
                                                         const v1::AddScheduleRequest* request,
                                                         v1::AddScheduleResponse*) {
  if (grpc::Status denied = Authorize(ctx, false, "AddSchedule"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  if (grpc::Status s = NeedStore("AddSchedule"); !s.ok()) return Finish(ctx, s);
  auto schedule = ScheduleFromProto(request->schedule());
  if (!schedule.ok()) return Finish(ctx, ToGrpc(schedule.status()));
  schedule->created_unix_ms = 0;  // the store stamps it: due times before now are not owed
  if (Status s = schedule::ValidateSchedule(*schedule); !s.ok()) return Finish(ctx, ToGrpc(s));
  // The experiment must be one the controller could run when the schedule fires.
  auto parsed = experiment::ParseExperimentText(schedule->spec_yaml,
                                                "schedule " + schedule->name + " experiment");
  if (!parsed.ok()) {
    std::string errors;
    for (const auto& d : parsed.errors) errors += "\n" + d.ToString();
    return Finish(ctx,
                  ToGrpc(InvalidArgument("experiment_yaml: the experiment is invalid:" + errors)));
  }
  Status added = schedules_->Add(*schedule);
  if (added.ok()) {
    spdlog::info("schedule {} added (\"{}\" in {}) by {}", schedule->name, schedule->cron,
                 schedule->tz, IdentifyPeer(*ctx).Describe());
  }
  return Finish(ctx, ToGrpc(added));
}

grpc::ServerUnaryReactor* ControllerService::ListSchedules(grpc::CallbackServerContext* ctx,
                                                           const v1::ListSchedulesRequest*,
                                                           v1::ListSchedulesResponse* response) {
  if (grpc::Status denied = Authorize(ctx, false, "ListSchedules"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  if (grpc::Status s = NeedStore("ListSchedules"); !s.ok()) return Finish(ctx, s);
  auto list = schedules_->List();
  if (!list.ok()) return Finish(ctx, ToGrpc(list.status()));
  for (const auto& sc : *list) *response->add_schedules() = ScheduleToProto(sc);
  return Finish(ctx, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ControllerService::RemoveSchedule(
    grpc::CallbackServerContext* ctx, const v1::RemoveScheduleRequest* request,
    v1::RemoveScheduleResponse*) {
  if (grpc::Status denied = Authorize(ctx, false, "RemoveSchedule"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  if (grpc::Status s = NeedStore("RemoveSchedule"); !s.ok()) return Finish(ctx, s);
  if (request->name().empty()) return Finish(ctx, ToGrpc(InvalidArgument("name: required")));
  Status removed = schedules_->Remove(request->name());
  if (removed.ok()) {
    spdlog::info("schedule {} removed by {}", request->name(), IdentifyPeer(*ctx).Describe());
  }
  return Finish(ctx, ToGrpc(removed));
}

grpc::ServerUnaryReactor* ControllerService::PauseSchedule(grpc::CallbackServerContext* ctx,
                                                           const v1::PauseScheduleRequest* request,
                                                           v1::PauseScheduleResponse*) {
  if (grpc::Status denied = Authorize(ctx, false, "PauseSchedule"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  if (grpc::Status s = NeedStore("PauseSchedule"); !s.ok()) return Finish(ctx, s);
  if (request->name().empty()) return Finish(ctx, ToGrpc(InvalidArgument("name: required")));
  return Finish(ctx, ToGrpc(schedules_->SetPaused(request->name(), request->paused())));
}

grpc::ServerUnaryReactor* ControllerService::ListFirings(grpc::CallbackServerContext* ctx,
                                                         const v1::ListFiringsRequest* request,
                                                         v1::ListFiringsResponse* response) {
  if (grpc::Status denied = Authorize(ctx, false, "ListFirings"); !denied.ok()) {
    return Finish(ctx, denied);
  }
  if (grpc::Status s = NeedStore("ListFirings"); !s.ok()) return Finish(ctx, s);
  auto firings = schedules_->Firings(
      request->name(), static_cast<int>(std::min<uint32_t>(request->limit(), 1'000'000)));
  if (!firings.ok()) return Finish(ctx, ToGrpc(firings.status()));
  for (const auto& f : *firings) *response->add_firings() = FiringToProto(f);
  return Finish(ctx, grpc::Status::OK);
}

}  // namespace faultline::daemon
