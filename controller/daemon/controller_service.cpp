#include "controller/daemon/controller_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>

#include "common/grpc_status.h"
#include "common/ids.h"
#include "common/tls.h"
#include "controller/daemon/store_proto.h"

namespace faultline::daemon {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* ctx, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
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
      // The client went away mid-write: finish now if Close() already waited on this write,
      // else the call never ends (a server Shutdown would wait for it for ever).
      writing_ = false;
      if (closing_) Finish(final_);
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

// The supervisor's Fleet over this controller's AgentRegistry.
class ControllerService::RegistryFleet final : public Fleet {
 public:
  explicit RegistryFleet(AgentRegistry& registry) : registry_(registry) {}
  engine::Inventory LiveInventory() override { return registry_.LiveInventory(); }
  std::shared_ptr<engine::AgentConnection> Connect(const engine::AgentEndpoint& ep) override {
    return registry_.Connect(ep);
  }
  std::vector<std::string> LiveAgentIds() override {
    std::vector<std::string> ids;
    for (const AgentSnapshot& a : registry_.List(false)) ids.push_back(a.info.agent_id());
    return ids;
  }
  std::vector<Result<v1::CommandResult>> Broadcast(const std::vector<std::string>& ids,
                                                   const v1::ControllerCommand& command,
                                                   Duration deadline) override {
    return registry_.Broadcast(ids, command, deadline);
  }
  bool AwaitLive(const std::string& id, Duration timeout) override {
    return registry_.AwaitLive(id, timeout);
  }

 private:
  AgentRegistry& registry_;
};

namespace {

RunSupervisorOptions WithAudit(RunSupervisorOptions options, access::AuditLog* audit) {
  options.audit = audit;
  return options;
}

// A caller that is no principal (wrong role, no certificate), as the audit log shows it.
access::Principal AuditSubject(const PeerIdentity& peer) {
  access::Principal p;
  p.identity = peer.Describe();
  p.role = peer.role.value_or(Role::kViewer);
  p.team = peer.team.value_or("");
  p.source = peer.authenticated ? "certificate" : "none";
  p.peer = peer.address;
  return p;
}

v1::AccessToken TokenToProto(const store::TokenRecord& t) {
  v1::AccessToken out;
  out.set_id(t.id);
  out.set_name(t.name);
  out.set_role(t.role);
  out.set_team(t.team);
  out.set_created_unix_ms(t.created_unix_ms);
  out.set_expires_unix_ms(t.expires_unix_ms);
  out.set_revoked_unix_ms(t.revoked_unix_ms);
  out.set_created_by(t.created_by);
  return out;
}

}  // namespace

void ConfigureControllerServer(grpc::ServerBuilder& builder) {
  // Measured with bench/scale_bench (bench/RESULTS.md): the controller's memory per attached
  // agent, ~105 KiB with gRPC's default 16 KiB frames.
  builder.AddChannelArgument(GRPC_ARG_TSI_MAX_FRAME_SIZE, kAgentTlsFrameBytes);
}

ControllerService::ControllerService(AgentRegistry& registry, ControllerServiceOptions options)
    : registry_(registry),
      plaintext_allow_all_(options.plaintext_allow_all),
      policy_(options.policy),
      own_audit_(options.audit ? nullptr : std::make_unique<access::AuditLog>(options.store)),
      audit_(options.audit ? options.audit : own_audit_.get()),
      tokens_(options.store ? std::make_unique<access::TokenAuthority>(*options.store) : nullptr),
      fleet_(std::make_unique<RegistryFleet>(registry)),
      supervisor_(std::make_unique<RunSupervisor>(*fleet_, WithAudit(options, audit_))) {}

ControllerService::~ControllerService() { supervisor_.reset(); }

grpc::ServerUnaryReactor* ControllerService::OnStoreWorker(grpc::CallbackServerContext* ctx,
                                                           std::function<Status()> work) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  Status queued = supervisor_->Post(
      [reactor, work = std::move(work)] { reactor->Finish(ToGrpcStatus(work())); });
  if (!queued.ok()) reactor->Finish(ToGrpcStatus(queued));
  return reactor;
}

Result<access::Principal> ControllerService::Authorize(grpc::CallbackServerContext* ctx,
                                                       Role needed, const char* action) {
  if (plaintext_allow_all_) return access::PlaintextPrincipal(ctx->peer());
  PeerIdentity peer = IdentifyPeer(*ctx);
  Result<access::Principal> who = access::PrincipalFromPeer(peer);
  Status allowed = who.ok() ? access::RequireRole(*who, needed, action) : who.status();
  if (allowed.ok()) return who;
  audit_->Record(action, who.ok() ? *who : AuditSubject(peer), allowed);
  return PermissionDenied(std::string(action) + " refused: " + allowed.message() +
                          " (needs a certificate with role " + RoleName(needed) +
                          (needed == Role::kViewer ? " or operator" : "") + ")");
}

grpc::Status ControllerService::AuthorizeAgent(grpc::CallbackServerContext* ctx) {
  if (plaintext_allow_all_) return grpc::Status::OK;
  PeerIdentity peer = IdentifyPeer(*ctx);
  if (peer.authenticated && peer.role == Role::kAgent) return grpc::Status::OK;
  std::string why = !peer.authenticated ? "no verified client certificate"
                    : peer.role         ? std::string("role '") + RoleName(*peer.role) + "'"
                                        : "the certificate carries no faultline role";
  audit_->Record("Attach", AuditSubject(peer), PermissionDenied(why));
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      "Attach refused: " + why + " (needs a certificate with role agent)");
}

grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage>* ControllerService::Attach(
    grpc::CallbackServerContext* ctx) {
  if (grpc::Status denied = AuthorizeAgent(ctx); !denied.ok()) {
    class Refused final : public grpc::ServerBidiReactor<v1::AgentMessage, v1::ControllerMessage> {
     public:
      explicit Refused(const grpc::Status& s) { Finish(s); }
      void OnDone() override { delete this; }
    };
    return new Refused(denied);
  }
  // The agent's identity is its certificate's, never what its Hello says (plaintext: no identity).
  std::optional<std::string> certified_id;
  if (!plaintext_allow_all_) certified_id = IdentifyPeer(*ctx).agent_id;
  return registry_.NewSession(ctx, plaintext_allow_all_, certified_id);
}

grpc::ServerWriteReactor<v1::RunEvent>* ControllerService::SubmitRun(
    grpc::CallbackServerContext* ctx, const v1::SubmitRunRequest* request) {
  auto stream = std::make_shared<RunStream>();
  stream->Own(stream);
  Result<access::Principal> who = Authorize(ctx, Role::kOperator, "SubmitRun");
  if (!who.ok()) {
    stream->Close(ToGrpcStatus(who.status()));
    return stream.get();
  }
  RunRequest run;
  run.experiment_yaml = request->experiment_yaml();
  run.file_name = request->file_name();
  run.lease_ttl = Duration(milliseconds(request->lease_ttl_ms()));
  run.source = "controller";
  run.principal = *who;
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
  // Starting a run records it in the store: on the store worker, not on this handler thread.
  RunSupervisor* supervisor = supervisor_.get();
  Status queued = supervisor->Post([supervisor, stream, run = std::move(run)]() mutable {
    Result<std::string> started = supervisor->StartRun(std::move(run));
    if (!started.ok()) {
      stream->Close(ToGrpcStatus(started.status()));
      return;
    }
    // The operator's client going away (Ctrl-C) aborts the run, as in direct mode (at once when
    // it already went away). The engine, not the supervisor, is captured: the stream may
    // outlive the service.
    if (std::shared_ptr<engine::RunEngine> engine = supervisor->ActiveRun(*started)) {
      stream->set_on_cancel([engine] { engine->Cancel("the submitting client disconnected"); });
    }
  });
  if (!queued.ok()) stream->Close(ToGrpcStatus(queued));
  return stream.get();
}

grpc::ServerUnaryReactor* ControllerService::ListAgents(grpc::CallbackServerContext* ctx,
                                                        const v1::ListAgentsRequest* request,
                                                        v1::ListAgentsResponse* response) {
  Result<access::Principal> who = Authorize(ctx, Role::kViewer, "ListAgents");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
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
  Result<access::Principal> who = Authorize(ctx, Role::kViewer, "ListFaults");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  RunSupervisor* supervisor = supervisor_.get();
  const bool include_reverted = request->include_reverted();
  Status spawned = supervisor->Spawn([supervisor, reactor, response, include_reverted] {
    *response = supervisor->FleetFaults(include_reverted);
    reactor->Finish(grpc::Status::OK);
  });
  if (!spawned.ok()) reactor->Finish(ToGrpcStatus(spawned));
  return reactor;
}

grpc::ServerUnaryReactor* ControllerService::Halt(grpc::CallbackServerContext* ctx,
                                                  const v1::HaltRequest* request,
                                                  v1::HaltResponse* response) {
  Result<access::Principal> who = Authorize(ctx, Role::kOperator, "Halt");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  std::string reason = request->reason().empty() ? "operator halt" : request->reason();
  reason += " (by " + who->Describe() + ")";
  audit_->Record("halt", *who, Status::Ok(), "reason=" + request->reason());
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // A halt has its own thread: it never waits behind the store worker's queue.
  RunSupervisor* supervisor = supervisor_.get();
  Status spawned = supervisor->Spawn([supervisor, reactor, response, reason] {
    HaltOutcome out = supervisor->HaltAll(reason);
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
  if (!spawned.ok()) reactor->Finish(ToGrpcStatus(spawned));
  return reactor;
}

grpc::ServerUnaryReactor* ControllerService::Resume(grpc::CallbackServerContext* ctx,
                                                    const v1::ResumeRequest*,
                                                    v1::ResumeResponse* response) {
  Result<access::Principal> who = Authorize(ctx, Role::kOperator, "Resume");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  RunSupervisor* supervisor = supervisor_.get();
  access::AuditLog* audit = audit_;
  return OnStoreWorker(ctx, [supervisor, response, audit, who = *who] {
    response->set_was_halted(supervisor->ResumeAll());
    audit->Record("resume", who, Status::Ok(),
                  response->was_halted() ? "was halted" : "was not halted");
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* ControllerService::GetRun(grpc::CallbackServerContext* ctx,
                                                    const v1::GetRunRequest* request,
                                                    v1::RunSummary* response) {
  Result<access::Principal> who = Authorize(ctx, Role::kViewer, "GetRun");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  RunSupervisor* supervisor = supervisor_.get();
  return OnStoreWorker(ctx, [supervisor, request, response] {
    Result<v1::RunSummary> run = supervisor->GetRun(request->run_id());
    if (!run.ok()) return run.status();
    *response = std::move(*run);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* ControllerService::ListRuns(grpc::CallbackServerContext* ctx,
                                                      const v1::ListRunsRequest* request,
                                                      v1::ListRunsResponse* response) {
  Result<access::Principal> who = Authorize(ctx, Role::kViewer, "ListRuns");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  RunSupervisor* supervisor = supervisor_.get();
  return OnStoreWorker(ctx, [supervisor, request, response] {
    auto runs = supervisor->ListRuns(request->experiment(), request->limit());
    if (!runs.ok()) return runs.status();
    *response = std::move(*runs);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* ControllerService::AnnotateRun(grpc::CallbackServerContext* ctx,
                                                         const v1::AnnotateRunRequest* request,
                                                         v1::RunAnnotation* response) {
  Result<access::Principal> who = Authorize(ctx, Role::kOperator, "AnnotateRun");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  RunSupervisor* supervisor = supervisor_.get();
  std::string caller = who->Describe();
  access::AuditLog* audit = audit_;
  return OnStoreWorker(ctx, [supervisor, request, response, caller, audit, who = *who] {
    auto added =
        supervisor->AnnotateRun(request->run_id(), request->author(), request->text(), caller);
    audit->Record("annotate", who, added.status(), "run=" + request->run_id());
    if (!added.ok()) return added.status();
    *response = std::move(*added);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* ControllerService::AddSchedule(grpc::CallbackServerContext* ctx,
                                                         const v1::AddScheduleRequest* request,
                                                         v1::AddScheduleResponse*) {
  Result<access::Principal> who = Authorize(ctx, Role::kOperator, "AddSchedule");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  RunSupervisor* supervisor = supervisor_.get();
  // A schedule's runs start without a principal: under a team policy only an operator without
  // a team (the fleet's administrator) may add one, so no team escapes its policy through it.
  if (policy_ != nullptr && policy_->Current() != nullptr && !who->team.empty()) {
    Status refused = PermissionDenied(
        "AddSchedule refused: with a team policy only an operator without a team may add "
        "schedules (their runs are not checked against a team's policy); " +
        who->Describe() + " belongs to team " + who->team);
    audit_->Record("schedule.add", *who, refused, "schedule=" + request->schedule().name());
    return Finish(ctx, ToGrpcStatus(refused));
  }
  std::string caller = who->Describe();
  access::AuditLog* audit = audit_;
  return OnStoreWorker(ctx, [supervisor, request, caller, audit, who = *who] {
    Status s = supervisor->AddSchedule(request->schedule(), caller);
    audit->Record("schedule.add", who, s, "schedule=" + request->schedule().name());
    return s;
  });
}

grpc::ServerUnaryReactor* ControllerService::ListSchedules(grpc::CallbackServerContext* ctx,
                                                           const v1::ListSchedulesRequest*,
                                                           v1::ListSchedulesResponse* response) {
  Result<access::Principal> who = Authorize(ctx, Role::kViewer, "ListSchedules");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  RunSupervisor* supervisor = supervisor_.get();
  return OnStoreWorker(ctx, [supervisor, response] {
    auto list = supervisor->ListSchedules();
    if (!list.ok()) return list.status();
    for (const auto& sc : *list) *response->add_schedules() = ScheduleToProto(sc);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* ControllerService::RemoveSchedule(
    grpc::CallbackServerContext* ctx, const v1::RemoveScheduleRequest* request,
    v1::RemoveScheduleResponse*) {
  Result<access::Principal> who = Authorize(ctx, Role::kOperator, "RemoveSchedule");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  RunSupervisor* supervisor = supervisor_.get();
  std::string caller = who->Describe();
  access::AuditLog* audit = audit_;
  return OnStoreWorker(ctx, [supervisor, request, caller, audit, who = *who] {
    Status s = supervisor->RemoveSchedule(request->name(), caller);
    audit->Record("schedule.remove", who, s, "schedule=" + request->name());
    return s;
  });
}

grpc::ServerUnaryReactor* ControllerService::PauseSchedule(grpc::CallbackServerContext* ctx,
                                                           const v1::PauseScheduleRequest* request,
                                                           v1::PauseScheduleResponse*) {
  Result<access::Principal> who = Authorize(ctx, Role::kOperator, "PauseSchedule");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  RunSupervisor* supervisor = supervisor_.get();
  access::AuditLog* audit = audit_;
  return OnStoreWorker(ctx, [supervisor, request, audit, who = *who] {
    Status s = supervisor->PauseSchedule(request->name(), request->paused());
    audit->Record(request->paused() ? "schedule.pause" : "schedule.resume", who, s,
                  "schedule=" + request->name());
    return s;
  });
}

grpc::ServerUnaryReactor* ControllerService::ListFirings(grpc::CallbackServerContext* ctx,
                                                         const v1::ListFiringsRequest* request,
                                                         v1::ListFiringsResponse* response) {
  Result<access::Principal> who = Authorize(ctx, Role::kViewer, "ListFirings");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  RunSupervisor* supervisor = supervisor_.get();
  return OnStoreWorker(ctx, [supervisor, request, response] {
    auto firings = supervisor->ListFirings(request->name(), request->limit());
    if (!firings.ok()) return firings.status();
    for (const auto& f : *firings) *response->add_firings() = FiringToProto(f);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* ControllerService::CreateToken(grpc::CallbackServerContext* ctx,
                                                         const v1::CreateTokenRequest* request,
                                                         v1::CreateTokenResponse* response) {
  Result<access::Principal> who = Authorize(ctx, Role::kOperator, "CreateToken");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  const std::string detail =
      "role=" + request->role() + " team=" + request->team() + " name=" + request->name();
  if (Status s = access::CheckMayManageTokens(*who, request->team()); !s.ok()) {
    audit_->Record("token.create", *who, s, detail);
    return Finish(ctx, ToGrpcStatus(s));
  }
  access::TokenAuthority* tokens = tokens_.get();
  access::AuditLog* audit = audit_;
  return OnStoreWorker(ctx, [tokens, audit, request, response, detail, who = *who] {
    if (tokens == nullptr) {
      return FailedPrecondition("tokens need a store (--store)");
    }
    std::optional<Role> role = ParseRole(request->role());
    if (!role)
      return InvalidArgument("role: want viewer or operator, not '" + request->role() + "'");
    auto issued = tokens->Create(*role, request->team(), std::chrono::seconds(request->ttl_s()),
                                 request->name(), who.Describe());
    audit->Record("token.create", who, issued.status(),
                  issued.ok() ? detail + " token=" + issued->record.id : detail);
    if (!issued.ok()) return issued.status();
    response->set_token(issued->token);
    *response->mutable_record() = TokenToProto(issued->record);
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* ControllerService::ListTokens(grpc::CallbackServerContext* ctx,
                                                        const v1::ListTokensRequest*,
                                                        v1::ListTokensResponse* response) {
  Result<access::Principal> who = Authorize(ctx, Role::kOperator, "ListTokens");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  access::TokenAuthority* tokens = tokens_.get();
  return OnStoreWorker(ctx, [tokens, response, who = *who] {
    if (tokens == nullptr) return FailedPrecondition("tokens need a store (--store)");
    auto list = tokens->List();
    if (!list.ok()) return list.status();
    for (const auto& t : *list) {
      // An operator with a team sees that team's tokens only.
      if (access::CheckMayManageTokens(who, t.team).ok()) *response->add_tokens() = TokenToProto(t);
    }
    return Status::Ok();
  });
}

grpc::ServerUnaryReactor* ControllerService::RevokeToken(grpc::CallbackServerContext* ctx,
                                                         const v1::RevokeTokenRequest* request,
                                                         v1::RevokeTokenResponse*) {
  Result<access::Principal> who = Authorize(ctx, Role::kOperator, "RevokeToken");
  if (!who.ok()) return Finish(ctx, ToGrpcStatus(who.status()));
  access::TokenAuthority* tokens = tokens_.get();
  access::AuditLog* audit = audit_;
  return OnStoreWorker(ctx, [tokens, audit, request, who = *who] {
    if (tokens == nullptr) return FailedPrecondition("tokens need a store (--store)");
    const std::string detail = "token=" + request->id();
    auto record = tokens->Get(request->id());
    Status s = record.ok() ? access::CheckMayManageTokens(who, record->team) : record.status();
    if (s.ok()) s = tokens->Revoke(request->id());
    audit->Record("token.revoke", who, s, detail);
    return s;
  });
}

}  // namespace faultline::daemon
