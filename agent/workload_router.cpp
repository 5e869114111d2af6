#include "agent/workload_router.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/host/netns_thread.h"
#include "agent/workloads/netns_identity.h"

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

// One active workload fault: the instance it is applied on now, and what earlier instances
// (before a followed restart) counted.
struct WorkloadRouter::Active {
  std::mutex mu;
  const std::string fault_id;
  const v1::FaultSpec spec;
  Workload workload;                   // guarded by mu: the instance faulted now
  std::shared_ptr<Place> place;        // guarded by mu
  std::shared_ptr<FaultHandle> inner;  // guarded by mu
  Evidence carried;                    // guarded by mu: summed final evidence of earlier ones
  Evidence last;                       // guarded by mu: the current instance's last evidence
  bool exited = false;                 // guarded by mu
  bool reverted = false;               // guarded by mu
  uint64_t restarts = 0;               // guarded by mu
  Active(std::string id, v1::FaultSpec s) : fault_id(std::move(id)), spec(std::move(s)) {}
};

namespace {

void AddInto(Evidence& sum, const Evidence& e) {
  for (const auto& [k, v] : e) sum[k] += v;
}

// The evidence of `inner`, asked on its namespace's thread.
Result<Evidence> EvidenceOn(host::NetnsThread& thread, const std::shared_ptr<FaultHandle>& inner) {
  return thread.Call<Evidence>([inner]() -> Result<Evidence> { return inner->GetEvidence(); },
                               kEvidenceDeadline);
}

// Whether `now` is a new instance of the workload `was`: it lives in another namespace, or it is a
// container whose init process changed in the same namespace (a container joined to a namespace
// that outlives it, like a pod's or the sandbox's: its new processes escaped a process fault).
bool Restarted(const Workload& was, const Workload& now) {
  if (!(now.netns == was.netns)) return true;
  return was.kind == workloads::WorkloadKind::kContainer && !was.pids.empty() &&
         !now.pids.empty() && was.pids.front() != now.pids.front();
}

}  // namespace

class WorkloadRouter::Handle final : public FaultHandle {
 public:
  Handle(WorkloadRouter* router, std::shared_ptr<Active> active)
      : router_(router), active_(std::move(active)) {}

  ~Handle() override {
    // A handle dropped without a revert (the manager reverts first) still gives its place back.
    std::lock_guard lock(active_->mu);
    if (!active_->reverted && active_->place) {
      active_->reverted = true;
      router_->ReleasePlace(active_->place);
    }
  }

  Status Revert() override {
    std::lock_guard lock(active_->mu);
    Active& a = *active_;
    if (a.reverted) return Status::Ok();
    auto inner = a.inner;
    Status s = a.place->thread->Run([inner] { return inner->Revert(); }, router_->deadline_);
    if (!s.ok()) return s;
    // The thread still holds the namespace, so the revert completed inside it even if the
    // workload has exited meanwhile: that is reported, not an error.
    a.exited = a.exited || !a.place->thread->PathStillNamesIt();
    if (a.exited) {
      spdlog::warn("fault {}: {} exited during the fault; reverted inside its namespace",
                   a.fault_id, a.place->description);
    }
    if (auto e = EvidenceOn(*a.place->thread, inner); e.ok()) a.last = *e;
    a.reverted = true;
    router_->ReleasePlace(a.place);
    router_->Bury({a.workload.netns.dev, a.workload.netns.ino}, std::move(a.inner),
                  std::move(a.place));
    return Status::Ok();
  }

  Evidence GetEvidence() const override {
    std::lock_guard lock(active_->mu);
    Active& a = *active_;
    if (!a.reverted) {
      if (auto e = EvidenceOn(*a.place->thread, a.inner); e.ok()) a.last = *e;
      a.exited = a.exited || !a.place->thread->PathStillNamesIt();
    }
    Evidence e = a.carried;
    AddInto(e, a.last);
    e["workload_exited"] = a.exited ? 1 : 0;
    e["workload_restarts"] = a.restarts;
    return e;
  }

 private:
  WorkloadRouter* const router_;
  const std::shared_ptr<Active> active_;
};

Result<Workload> ResolveByNetnsPath(const Workload& workload) {
  auto id = workloads::StatNetns(workload.netns_path);
  if (!id.ok()) return id.status();
  Workload now = workload;
  now.netns = *id;
  return now;
}

WorkloadRouter::WorkloadRouter(std::unique_ptr<FaultBackend> host, NetnsBackendFactory factory,
                               std::chrono::milliseconds deadline)
    : host_(std::move(host)), factory_(std::move(factory)), deadline_(deadline) {}

WorkloadRouter::~WorkloadRouter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  follow_cv_.notify_all();
  reap_cv_.notify_all();
  if (follower_.joinable()) follower_.join();
  if (reaper_.joinable()) reaper_.join();
}

void WorkloadRouter::Bury(std::pair<uint64_t, uint64_t> key, std::shared_ptr<FaultHandle> inner,
                          std::shared_ptr<Place> place) {
  std::lock_guard lock(mu_);
  buried_.push_back({key, std::move(place), std::move(inner)});
  reap_cv_.notify_all();
  if (reaper_.joinable()) return;
  reaper_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (true) {
      reap_cv_.wait(lock, [this] { return stop_ || !buried_.empty(); });
      if (buried_.empty()) return;  // stopping, and nothing left to drop
      Remains r = std::move(buried_.front());
      buried_.erase(buried_.begin());
      reaping_ = r.key;
      lock.unlock();
      r.inner.reset();
      r.place.reset();
      lock.lock();
      reaping_.reset();
      reap_cv_.notify_all();
    }
  });
}

void WorkloadRouter::FollowRestarts(WorkloadResolver resolver, std::chrono::milliseconds interval) {
  follower_ = std::thread([this, resolver = std::move(resolver), interval] {
    std::unique_lock lock(mu_);
    while (!follow_cv_.wait_for(lock, interval, [this] { return stop_; })) {
      lock.unlock();
      CheckRestarts(resolver);
      lock.lock();
    }
  });
}

int WorkloadRouter::CheckRestarts(const WorkloadResolver& resolver) {
  std::vector<std::shared_ptr<Active>> actives;
  {
    std::lock_guard lock(mu_);
    for (const auto& w : active_) {
      if (auto a = w.lock()) actives.push_back(std::move(a));
    }
  }
  int moved = 0;
  for (const auto& a : actives) {
    Workload was;
    std::shared_ptr<Place> old_place;
    std::shared_ptr<FaultHandle> old_inner;
    {
      std::lock_guard lock(a->mu);
      if (a->reverted) continue;
      was = a->workload;
      old_place = a->place;
      old_inner = a->inner;
    }
    // No lock across the resolution or any host call: a revert goes ahead meanwhile.
    auto now = resolver(was);
    if (!now.ok()) {
      if (now.status().code() == StatusCode::kNotFound) {
        std::lock_guard lock(a->mu);
        a->exited = true;
      } else {
        spdlog::warn("fault {}: re-resolving {}: {}", a->fault_id, Describe(was),
                     now.status().ToString());
      }
      continue;
    }
    if (!now->netns.Valid() || !Restarted(was, *now)) continue;
    if (!host_->FollowsRestarts(a->spec)) {
      // A one-shot kill has nothing to undo and is not repeated: the restart is observed.
      std::lock_guard lock(a->mu);
      if (a->reverted) continue;
      a->workload = *now;
      a->exited = false;
      ++a->restarts;
      spdlog::info("fault {}: {} restarted ({}); a one-shot kill is not applied again", a->fault_id,
                   Describe(was), Describe(*now));
      continue;
    }
    // Restarted. The old instance's fault goes first: its table record shares the fault's name.
    Status old_reverted =
        old_place->thread->Run([old_inner] { return old_inner->Revert(); }, deadline_);
    if (!old_reverted.ok()) {
      spdlog::warn("fault {}: reverting in the old instance of {}: {}", a->fault_id, Describe(was),
                   old_reverted.ToString());
    }
    auto old_evidence = EvidenceOn(*old_place->thread, old_inner);
    auto place = Acquire(*now);
    Result<std::shared_ptr<FaultHandle>> applied = place.ok() ? Status::Ok() : place.status();
    if (place.ok()) {
      auto backend = (*place)->backend;
      const std::string id = a->fault_id;
      const v1::FaultSpec spec = a->spec;
      applied = (*place)->thread->Call<std::shared_ptr<FaultHandle>>(
          [backend, id, spec]() -> Result<std::shared_ptr<FaultHandle>> {
            auto h = backend->Apply(id, spec);
            if (!h.ok()) return h.status();
            return std::shared_ptr<FaultHandle>(std::move(*h));
          },
          deadline_);
    }
    std::unique_lock lock(a->mu);
    if (!applied.ok()) {
      spdlog::error("fault {}: {} restarted ({}) but the fault could not follow: {}", a->fault_id,
                    Describe(was), Describe(*now), applied.status().ToString());
      a->exited = true;
      lock.unlock();
      if (place.ok()) ReleasePlace(*place);
      continue;
    }
    if (a->reverted) {  // reverted while we applied: undo the new instance's fault too
      lock.unlock();
      auto h = *applied;
      (void)(*place)->thread->Run([h] { return h->Revert(); }, deadline_);
      ReleasePlace(*place);
      continue;
    }
    if (old_evidence.ok()) AddInto(a->carried, *old_evidence);
    a->last.clear();
    a->workload = *now;
    a->place = *place;
    a->inner = std::move(*applied);
    a->exited = false;
    ++a->restarts;
    lock.unlock();
    ReleasePlace(old_place);
    spdlog::info("fault {}: followed the restart of {} into {}", a->fault_id, Describe(was),
                 Describe(*now));
    ++moved;
  }
  return moved;
}

size_t WorkloadRouter::namespaces() const {
  std::lock_guard lock(mu_);
  return places_.size();
}

Result<std::shared_ptr<WorkloadRouter::Place>> WorkloadRouter::Acquire(const Workload& workload) {
  const auto key = std::make_pair(workload.netns.dev, workload.netns.ino);
  {
    std::unique_lock lock(mu_);
    // An instance of this namespace still being dropped goes first (Bury).
    reap_cv_.wait(lock, [&] {
      return reaping_ != key && std::none_of(buried_.begin(), buried_.end(),
                                             [&](const Remains& r) { return r.key == key; });
    });
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
  auto active = std::make_shared<Active>(fault_id, spec);
  active->workload = workload;
  active->place = p;
  active->inner = std::move(*applied);
  {
    std::lock_guard lock(mu_);
    std::erase_if(active_, [](const std::weak_ptr<Active>& w) { return w.expired(); });
    active_.push_back(active);
  }
  return std::unique_ptr<FaultHandle>(std::make_unique<Handle>(this, std::move(active)));
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
