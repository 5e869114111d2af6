#include "controller/daemon/run_supervisor.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/clock.h"
#include "common/ids.h"
#include "controller/daemon/store_proto.h"
#include "controller/experiment/parser.h"
#include "controller/probes/probe_runner.h"
#include "controller/report/report.h"
#include "controller/schedule/scheduler.h"

namespace faultline::daemon {
namespace {

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

RunSupervisor::RunSupervisor(Fleet& fleet, RunSupervisorOptions options)
    : fleet_(fleet),
      options_(std::move(options)),
      own_audit_(options_.audit ? nullptr : std::make_unique<access::AuditLog>(nullptr)),
      audit_(options_.audit ? options_.audit : own_audit_.get()) {
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
  store_worker_ = std::thread([this] { WorkerLoop(); });
}

RunSupervisor::~RunSupervisor() {
  std::vector<Worker> threads;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [id, engine] : active_runs_) engine->Cancel("the controller is stopping");
  }
  {
    std::lock_guard lock(queue_mu_);
    queue_closed_ = true;
  }
  queue_cv_.notify_all();
  // The worker runs what is queued (each task finishes an RPC) before it returns.
  if (store_worker_.joinable()) store_worker_.join();
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) {
    if (t.thread.joinable()) t.thread.join();
  }
}

Status RunSupervisor::Post(std::function<void()> task) {
  {
    std::lock_guard lock(queue_mu_);
    if (queue_closed_) return Unavailable("the controller is stopping");
    if (queue_.size() >= options_.max_queued) {
      return ResourceExhausted("the controller is busy: " + std::to_string(queue_.size()) +
                               " store requests are waiting; try again");
    }
    queue_.push_back(std::move(task));
  }
  queue_cv_.notify_all();  // the worker, and AwaitQueued
  return Status::Ok();
}

bool RunSupervisor::AwaitQueued(size_t count, Duration timeout) {
  std::unique_lock lock(queue_mu_);
  return queue_cv_.wait_for(lock, timeout, [&] { return queue_.size() >= count; });
}

void RunSupervisor::WorkerLoop() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return queue_closed_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closed and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

Status RunSupervisor::Spawn(std::function<void()> work) {
  std::lock_guard lock(mu_);
  if (stopping_) return Unavailable("the controller is stopping");
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
  return Status::Ok();
}

Result<std::string> RunSupervisor::StartRun(RunRequest request) {
  // A submission by a principal is audited with its outcome, whatever it is.
  const std::optional<access::Principal> who = request.principal;
  std::string detail = "file=" + (request.file_name.empty() ? "<submitted>" : request.file_name);
  auto audited = [&](Result<std::string> r) {
    if (who)
      audit_->Record("run.submit", *who, r.status(), r.ok() ? detail + " run=" + *r : detail);
    return r;
  };
  if (halted_) {
    return audited(
        FailedPrecondition("the controller is halted: no run starts until `faultline resume`"));
  }
  auto outcome = std::make_shared<experiment::ParseOutcome>(experiment::ParseExperimentText(
      request.experiment_yaml,
      request.file_name.empty() ? std::string("<submitted>") : request.file_name));
  if (!outcome->ok()) {
    std::string errors;
    for (const auto& d : outcome->errors) errors += "\n" + d.ToString();
    return audited(InvalidArgument("the experiment is invalid; nothing was applied:" + errors));
  }
  detail += " experiment=" + outcome->experiment->name;
  if (Status s = probes::CheckCommandProbesAllowed(
          *outcome->experiment, options_.command_probe_allowlist, "--allow-command-probe");
      !s.ok()) {
    return audited(s);
  }
  // One snapshot of the fleet: the policy judges the agents the engine will choose from.
  engine::Inventory inventory = fleet_.LiveInventory();
  if (who && options_.policy) {
    if (std::shared_ptr<const access::TeamPolicy> policy = options_.policy->Current()) {
      Status allowed = policy->CheckRun(*who, *outcome->experiment, inventory,
                                        SystemClock::Instance().WallUnixMs());
      if (!allowed.ok()) return audited(allowed);
    }
  }
  engine::RunOptions opts;
  opts.run_id = NewRunId();
  opts.lease_ttl =
      request.lease_ttl > Duration::zero() ? request.lease_ttl : options_.default_lease_ttl;
  opts.rpc_deadline = options_.rpc_deadline;
  opts.connect = [this](const engine::AgentEndpoint& ep) { return fleet_.Connect(ep); };
  opts.on_progress = std::move(request.on_progress);
  if (RunObserver* observer = options_.observer) {
    opts.on_progress = [observer, run_id = opts.run_id,
                        user = std::move(opts.on_progress)](const engine::ProgressEvent& e) {
      if (user) user(e);
      observer->OnProgress(run_id, e);
    };
    opts.on_sample = [observer, run_id = opts.run_id](const std::string& probe,
                                                      const engine::ProbeSample& sample) {
      observer->OnSample(run_id, probe, sample);
    };
  }
  auto engine = std::make_shared<engine::RunEngine>(*outcome->experiment, inventory, opts);
  const std::string run_id = opts.run_id;
  const int64_t started = SystemClock::Instance().WallUnixMs();
  {
    std::lock_guard lock(mu_);
    if (stopping_) return audited(Unavailable("the controller is stopping"));
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
  if (options_.observer) {
    options_.observer->OnRunStarted(
        run_id, std::shared_ptr<const experiment::Experiment>(outcome, &*outcome->experiment),
        SystemClock::Instance().Now(), started);
  }
  // Halted between the check above and now: the run must not start.
  if (halted_) engine->Cancel("halted");
  Status spawned =
      Spawn([this, engine, outcome, run_id, on_finished = std::move(request.on_finished)] {
        engine::RunResult result = engine->Run();
        if (options_.on_run_finished) options_.on_run_finished(result);
        if (options_.observer) options_.observer->OnRunFinished(result);
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
  if (!spawned.ok()) {
    // Stopping since the check above: nothing was applied; the store keeps it running until the
    // next start marks it interrupted, as for a controller killed now.
    std::lock_guard lock(mu_);
    active_runs_.erase(run_id);
    return audited(spawned);
  }
  return audited(run_id);
}

bool RunSupervisor::CancelRun(const std::string& run_id, const std::string& reason) {
  std::lock_guard lock(mu_);
  auto it = active_runs_.find(run_id);
  if (it == active_runs_.end()) return false;
  it->second->Cancel(reason);
  return true;
}

std::shared_ptr<engine::RunEngine> RunSupervisor::ActiveRun(const std::string& run_id) {
  std::lock_guard lock(mu_);
  auto it = active_runs_.find(run_id);
  return it == active_runs_.end() ? nullptr : it->second;
}

void RunSupervisor::RecordRun(const v1::RunSummary& summary) {
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

v1::ListFleetFaultsResponse RunSupervisor::FleetFaults(bool include_reverted) {
  v1::ListFleetFaultsResponse response;
  std::vector<std::string> ids = fleet_.LiveAgentIds();
  v1::ControllerCommand list;
  list.mutable_list()->set_include_reverted(include_reverted);
  auto results = fleet_.Broadcast(ids, list, options_.fanout_deadline);
  for (size_t i = 0; i < ids.size(); ++i) {
    const auto& r = results[i];
    if (!r.ok() || r->code() != 0) {
      v1::AgentError* e = response.add_unreachable();
      e->set_agent_id(ids[i]);
      e->set_error(r.ok() ? r->message() : r.status().message());
      continue;
    }
    for (const v1::FaultStatus& f : r->list().faults()) {
      v1::FleetFault* ff = response.add_faults();
      ff->set_agent_id(ids[i]);
      *ff->mutable_fault() = f;
    }
  }
  return response;
}

HaltOutcome RunSupervisor::HaltAll(const std::string& reason) {
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

void RunSupervisor::SyncHaltWithStore() {
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
    if (options_.observer) options_.observer->OnResume();
  }
}

HaltOutcome RunSupervisor::HaltHere(const std::string& reason) {
  const MonoTime start = SystemClock::Instance().Now();
  halted_ = true;
  if (options_.observer) options_.observer->OnHalt(reason, nullptr);
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
  std::vector<std::string> ids = fleet_.LiveAgentIds();
  out.agents = static_cast<uint32_t>(ids.size());
  v1::ControllerCommand revert_all;
  revert_all.mutable_revert_all();
  const MonoTime give_up = start + options_.fanout_deadline;
  std::vector<std::string> todo = ids;
  std::map<std::string, std::string> errors;
  while (!todo.empty()) {
    Duration left = give_up - SystemClock::Instance().Now();
    if (left <= Duration::zero()) break;
    auto results = fleet_.Broadcast(todo, revert_all, left);
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
          fleet_.AwaitLive(todo[i], std::chrono::milliseconds(0))) {
        again.push_back(todo[i]);
      }
    }
    todo.swap(again);
  }
  for (auto& [id, e] : errors) out.failed.emplace_back(id, e);
  out.elapsed = SystemClock::Instance().Now() - start;
  spdlog::warn("HALT done in {}: {} agent(s), {} fault(s) reverted, {} failed",
               FormatDuration(out.elapsed), out.agents, out.faults_reverted, out.failed.size());
  if (options_.observer) options_.observer->OnHalt(reason, &out);
  return out;
}

bool RunSupervisor::ResumeAll() {
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
  if (was && options_.observer) options_.observer->OnResume();
  return was;
}

Status RunSupervisor::NeedStore(const char* action) const {
  if (options_.store) return Status::Ok();
  return FailedPrecondition(std::string(action) +
                            ": this controller has no store (started with --store none)");
}

Result<v1::RunSummary> RunSupervisor::GetRun(const std::string& run_id) {
  v1::RunSummary response;
  {
    // This process's runs carry their text report too.
    std::lock_guard lock(mu_);
    auto it = runs_.find(run_id);
    if (it != runs_.end() && (!options_.store || it->second.verdict() != "RUNNING")) {
      response = it->second;
    }
  }
  if (!options_.store) {
    if (!response.run_id().empty()) return response;
    return NotFound("no run " + run_id + " on this controller");
  }
  // The store has the annotations, and the state other controllers (or a restart) gave the run.
  Result<store::StoredRun> stored = options_.store->GetRun(run_id);
  if (!stored.ok()) {
    if (!response.run_id().empty()) return response;
    return stored.status();
  }
  std::string text = response.report_text();
  int32_t exit_code = response.exit_code();
  std::string reason = response.reason();
  response = RunToProto(stored->run);
  response.set_report_text(text);
  response.set_exit_code(exit_code);
  response.set_reason(reason);
  for (const auto& a : stored->annotations) *response.add_annotations() = AnnotationToProto(a);
  return response;
}

Result<v1::ListRunsResponse> RunSupervisor::ListRuns(const std::string& experiment,
                                                     uint32_t limit) {
  v1::ListRunsResponse response;
  if (options_.store) {
    store::RunFilter filter;
    filter.limit = static_cast<int>(std::min<uint32_t>(limit, 1'000'000));
    filter.experiment = experiment;
    auto runs = options_.store->ListRuns(filter);
    if (!runs.ok()) return runs.status();
    for (const auto& r : *runs) *response.add_runs() = RunToProto(r);
    return response;
  }
  std::lock_guard lock(mu_);
  std::vector<const v1::RunSummary*> all;
  for (const auto& [id, s] : runs_) {
    if (experiment.empty() || s.experiment() == experiment) all.push_back(&s);
  }
  std::sort(all.begin(), all.end(),
            [](auto* a, auto* b) { return a->started_unix_ms() > b->started_unix_ms(); });
  size_t n = limit == 0 ? all.size() : limit;
  for (size_t i = 0; i < all.size() && i < n; ++i) {
    v1::RunSummary* s = response.add_runs();
    *s = *all[i];
    s->clear_report_json();  // the list is a table; GetRun has the reports
    s->clear_report_text();
  }
  return response;
}

Result<v1::RunAnnotation> RunSupervisor::AnnotateRun(const std::string& run_id,
                                                     const std::string& author,
                                                     const std::string& text,
                                                     const std::string& caller) {
  if (Status s = NeedStore("AnnotateRun"); !s.ok()) return s;
  if (run_id.empty()) return InvalidArgument("run_id: required");
  if (text.empty()) return InvalidArgument("text: required");
  if (text.size() > 4096) return InvalidArgument("text: longer than 4096 bytes");
  if (author.size() > 256) return InvalidArgument("author: longer than 256 bytes");
  auto stored = options_.store->GetRun(run_id);  // resolves a prefix
  if (!stored.ok()) return stored.status();
  store::Annotation note;
  note.run_id = stored->run.id;
  note.author = author.empty() ? caller : author;
  note.text = text;
  auto added = options_.store->AddAnnotation(note);
  if (!added.ok()) return added.status();
  return AnnotationToProto(*added);
}

Status RunSupervisor::AddSchedule(const v1::Schedule& proto, const std::string& caller) {
  if (Status s = NeedStore("AddSchedule"); !s.ok()) return s;
  auto schedule = ScheduleFromProto(proto);
  if (!schedule.ok()) return schedule.status();
  schedule->created_unix_ms = 0;  // the store stamps it: due times before now are not owed
  if (Status s = schedule::ValidateSchedule(*schedule); !s.ok()) return s;
  // The experiment must be one the controller could run when the schedule fires.
  auto parsed = experiment::ParseExperimentText(schedule->spec_yaml,
                                                "schedule " + schedule->name + " experiment");
  if (!parsed.ok()) {
    std::string errors;
    for (const auto& d : parsed.errors) errors += "\n" + d.ToString();
    return InvalidArgument("experiment_yaml: the experiment is invalid:" + errors);
  }
  Status added = schedules_->Add(*schedule);
  if (added.ok()) {
    spdlog::info("schedule {} added (\"{}\" in {}) by {}", schedule->name, schedule->cron,
                 schedule->tz, caller);
  }
  return added;
}

Result<std::vector<store::Schedule>> RunSupervisor::ListSchedules() {
  if (Status s = NeedStore("ListSchedules"); !s.ok()) return s;
  return schedules_->List();
}

Status RunSupervisor::RemoveSchedule(const std::string& name, const std::string& caller) {
  if (Status s = NeedStore("RemoveSchedule"); !s.ok()) return s;
  if (name.empty()) return InvalidArgument("name: required");
  Status removed = schedules_->Remove(name);
  if (removed.ok()) spdlog::info("schedule {} removed by {}", name, caller);
  return removed;
}

Status RunSupervisor::PauseSchedule(const std::string& name, bool paused) {
  if (Status s = NeedStore("PauseSchedule"); !s.ok()) return s;
  if (name.empty()) return InvalidArgument("name: required");
  return schedules_->SetPaused(name, paused);
}

Result<std::vector<store::Firing>> RunSupervisor::ListFirings(const std::string& name,
                                                              uint32_t limit) {
  if (Status s = NeedStore("ListFirings"); !s.ok()) return s;
  return schedules_->Firings(name, static_cast<int>(std::min<uint32_t>(limit, 1'000'000)));
}

}  // namespace faultline::daemon
