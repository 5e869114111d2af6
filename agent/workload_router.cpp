#include "agent/workload_router.h"

#include <spdlog/spdlog.h>

#include "agent/host/netns_thread.h"

namespace faultline::agent {

using workloads::Workload;

namespace {

// How long GetEvidence waits for the namespace's thread before answering with the last values
// (an apply on the same thread may be in progress).
constexpr std::chrono::milliseconds kEvidenceDeadline{1000};

std::string Describe(const Workload& w) {
  return std::string(workloads::WorkloadKindName(w.kind)) + " " + (w.name.empty() ? w.id : w.name) +
         " (netns " + w.netns_path + ")";
}

}  // namespace

Result<Workload> WorkloadFromProto(const v1::Workload& p) {
  Workload w;
  static const std::pair<const char*, workloads::WorkloadKind> kKinds[] = {
      {"container", workloads::WorkloadKind::kContainer},
      {"pod", workloads::WorkloadKind::kPod},
      {"netns", workloads::WorkloadKind::kNetns},
      {"cgroup", workloads::WorkloadKind::kCgroup},
      {"pid", workloads::WorkloadKind::kPid}};
  bool known = p.kind().empty();
  for (const auto& [name, kind] : kKinds) {
    if (p.kind() == name) {
      w.kind = kind;
      known = true;
    }
  }
  if (!known) return InvalidArgument("workload.kind: unknown kind '" + p.kind() + "'");
  if (p.netns_path().empty() || p.netns_path().front() != '/' ||
      p.netns_path().find("/../") != std::string::npos || p.netns_path().size() > 4096) {
    return InvalidArgument("workload.netns_path: an absolute path is required");
  }
  if (p.netns_ino() == 0) {
    return InvalidArgument("workload.netns_ino: the namespace's recorded identity is required");
  }
  w.runtime = p.runtime();
  w.id = p.id();
  w.name = p.name();
  w.pod_namespace = p.pod_namespace();
  w.labels = {p.labels().begin(), p.labels().end()};
  for (uint32_t pid : p.pids()) w.pids.push_back(static_cast<pid_t>(pid));
  w.netns_path = p.netns_path();
  w.netns = {p.netns_dev(), p.netns_ino()};
  w.cgroup_path = p.cgroup_path();
  w.host = p.host();
  return w;
}

struct WorkloadRouter::Place {
  std::shared_ptr<host::NetnsThread> thread;  // destroyed after the backend (declared first)
  std::shared_ptr<FaultBackend> backend;
  std::function<Result<std::vector<std::string>>()> sweep;
  std::string description;
  int users = 0;  // guarded by the router's mu_
};

namespace {

class WorkloadFaultHandle final : public FaultHandle {
 public:
  using ReleaseFn = std::function<void()>;
  WorkloadFaultHandle(std::string fault_id, std::string description,
                      std::shared_ptr<host::NetnsThread> thread, std::shared_ptr<FaultHandle> inner,
                      std::chrono::milliseconds deadline, ReleaseFn release)
      : fault_id_(std::move(fault_id)),
        description_(std::move(description)),
        thread_(std::move(thread)),
        inner_(std::move(inner)),
        deadline_(deadline),
        release_(std::move(release)) {}

  ~WorkloadFaultHandle() override {
    // A handle dropped without a revert (an apply cancelled mid-way is reverted by its caller
    // first) must still give its place back.
    std::lock_guard lock(mu_);
    if (!released_ && release_) release_();
  }

  Status Revert() override {
    std::lock_guard lock(mu_);
    if (reverted_) return Status::Ok();
    auto inner = inner_;
    Status s = thread_->Run([inner] { return inner->Revert(); }, deadline_);
    if (!s.ok()) return s;
    // The thread still holds the namespace, so the revert completed inside it even if the
    // workload has exited meanwhile: that is reported, not an error.
    exited_ = !thread_->PathStillNamesIt();
    if (exited_) {
      spdlog::warn("fault {}: {} exited during the fault; reverted inside its namespace", fault_id_,
                   description_);
    }
    auto final_evidence = thread_->Call<Evidence>(
        [inner]() -> Result<Evidence> { return inner->GetEvidence(); }, kEvidenceDeadline);
    if (final_evidence.ok()) last_ = *final_evidence;
    reverted_ = true;
    if (!released_) {
      released_ = true;
      release_();
    }
    return Status::Ok();
  }

  Evidence GetEvidence() const override {
    std::lock_guard lock(mu_);
    if (!reverted_) {
      auto inner = inner_;
      auto now = thread_->Call<Evidence>(
          [inner]() -> Result<Evidence> { return inner->GetEvidence(); }, kEvidenceDeadline);
      if (now.ok()) last_ = *now;
      exited_ = exited_ || !thread_->PathStillNamesIt();
    }
    Evidence e = last_;
    e["workload_exited"] = exited_ ? 1 : 0;
    return e;
  }

 private:
  const std::string fault_id_;
  const std::string description_;
  const std::shared_ptr<host::NetnsThread> thread_;
  const std::shared_ptr<FaultHandle> inner_;
  const std::chrono::milliseconds deadline_;
  const ReleaseFn release_;
  mutable std::mutex mu_;
  mutable Evidence last_;        // guarded by mu_
  mutable bool exited_ = false;  // guarded by mu_
  bool reverted_ = false;        // guarded by mu_
  bool released_ = false;        // guarded by mu_
};

}  // namespace

WorkloadRouter::WorkloadRouter(std::unique_ptr<FaultBackend> host, NetnsBackendFactory factory,
                               std::chrono::milliseconds deadline)
    : host_(std::move(host)), factory_(std::move(factory)), deadline_(deadline) {}

WorkloadRouter::~WorkloadRouter() = default;

size_t WorkloadRouter::namespaces() const {
  std::lock_guard lock(mu_);
  return places_.size();
}

Result<std::shared_ptr<WorkloadRouter::Place>> WorkloadRouter::Acquire(const Workload& workload) {
  const auto key = std::make_pair(workload.netns.dev, workload.netns.ino);
  {
    std::lock_guard lock(mu_);
    auto it = places_.find(key);
    if (it != places_.end()) {
      ++it->second->users;
      return it->second;
    }
  }
  // Outside the lock: opening the namespace and making the instance is host I/O.
  auto thread = host::NetnsThread::Open(workload.netns_path, workload.netns, deadline_);
  if (!thread.ok()) return thread.status();
  auto made = (*thread)->Call<NetnsBackend>(
      [factory = factory_, workload]() -> Result<NetnsBackend> { return factory(workload); },
      deadline_);
  if (!made.ok()) {
    return Status(made.status().code(),
                  Kind() + " in " + Describe(workload) + ": " + made.status().message());
  }
  auto place = std::make_shared<Place>();
  place->thread = std::move(*thread);
  place->backend = std::move(made->backend);
  place->sweep = std::move(made->sweep);
  place->description = Describe(workload);
  std::lock_guard lock(mu_);
  auto [it, inserted] = places_.emplace(key, place);
  ++it->second->users;  // a concurrent Acquire may have won: use its place, drop ours
  return it->second;
}

void WorkloadRouter::ReleasePlace(const std::shared_ptr<Place>& place) {
  std::shared_ptr<Place> dropped;
  {
    std::lock_guard lock(mu_);
    if (--place->users > 0) return;
    for (auto it = places_.begin(); it != places_.end(); ++it) {
      if (it->second == place) {
        dropped = std::move(it->second);
        places_.erase(it);
        break;
      }
    }
  }
  // `dropped` (and with the handles' last references, the thread) goes outside the lock.
}

Result<std::unique_ptr<FaultHandle>> WorkloadRouter::ApplyInWorkload(const std::string& fault_id,
                                                                     const v1::FaultSpec& spec,
                                                                     const Workload& workload) {
  auto place = Acquire(workload);
  if (!place.ok()) return place.status();
  std::shared_ptr<Place> p = *place;
  auto backend = p->backend;
  auto applied = p->thread->Call<std::shared_ptr<FaultHandle>>(
      [backend, fault_id, spec]() -> Result<std::shared_ptr<FaultHandle>> {
        auto h = backend->Apply(fault_id, spec);
        if (!h.ok()) return h.status();
        return std::shared_ptr<FaultHandle>(std::move(*h));
      },
      deadline_);
  if (!applied.ok()) {
    // A deadline may leave an apply running on the thread; the journal record makes the next
    // start revert whatever it left, and the place stays until its users are gone.
    ReleasePlace(p);
    return applied.status();
  }
  spdlog::info("fault {} ({}) applied inside {}", fault_id, Kind(), p->description);
  return std::unique_ptr<FaultHandle>(std::make_unique<WorkloadFaultHandle>(
      fault_id, p->description, p->thread, std::move(*applied), deadline_,
      [this, p] { ReleasePlace(p); }));
}

Status WorkloadRouter::RevertOrphanInWorkload(const std::string& fault_id,
                                              const v1::FaultSpec& spec, const Workload& workload) {
  auto place = Acquire(workload);
  if (!place.ok()) {
    const StatusCode code = place.status().code();
    if (code == StatusCode::kNotFound || code == StatusCode::kFailedPrecondition) {
      return NotFound(Describe(workload) + " is gone: " + place.status().message());
    }
    return place.status();
  }
  std::shared_ptr<Place> p = *place;
  auto backend = p->backend;
  auto sweep = p->sweep;
  const std::string kind = Kind();
  Status s = p->thread->Run(
      [backend, sweep, fault_id, spec, kind]() -> Status {
        if (Status r = backend->RevertOrphan(fault_id, spec); !r.ok()) return r;
        if (!sweep) return Status::Ok();
        auto swept = sweep();
        if (!swept.ok()) return swept.status();
        for (const std::string& what : *swept) {
          spdlog::warn("swept leftover {} state {} in a workload's namespace", kind, what);
        }
        return Status::Ok();
      },
      deadline_);
  ReleasePlace(p);
  return s;
}

}  // namespace faultline::agent
