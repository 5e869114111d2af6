#pragma once
// WorkloadRouter: serves one fault kind on the host and inside workloads (containers, pods,
// runtime-free netns handles) without moving the agent.
//
// A fault on the host goes to the kind's host backend unchanged. A fault on a workload goes to a
// backend instance of that kind made for the workload's network namespace: the router keeps one
// host::NetnsThread per namespace (opened on the recorded path and checked against the recorded
// dev/ino) and makes, applies, reverts and sweeps that instance only on that thread. So
// everything the instance creates is the namespace's: its nft tables and dead-man refresher
// (libnftables' socket and the refresher thread are made there), the DNS interceptor's and the
// proxy's sockets and loops, iptables' argv for the NFQUEUE delay line. Kernel state is thus
// named and swept per namespace; the journal holds the request with its resolved workload, so a
// restarted agent reverts inside the same namespace (RevertOrphanInWorkload), or reports the
// fault gone with its workload when the namespace no longer exists.
//
// When the last fault of a namespace is reverted, its instance and thread are dropped (which
// releases the namespace). A workload that exits while its fault is active does not make revert
// fail: the thread still holds the namespace, the revert completes there, and the fault's
// evidence says `workload_exited: 1`.
//
// Restart policy (FollowRestarts / CheckRestarts): a workload restarted during its fault gets the
// fault again on its new instance. Each check re-resolves every active workload fault; when the
// workload now lives in another namespace, or is a container whose init process changed in the
// same namespace (one joined to a namespace that outlives it), the fault is reverted in the old
// instance and applied to the new one with the same spec, and `workload_restarts` in its evidence
// counts how often (the other counters are summed over the instances). A workload that cannot be
// resolved any more is reported `workload_exited: 1` and followed again if it comes back.
// Exception: a fault whose kind says it does not follow restarts (FaultBackend::FollowsRestarts:
// a one-shot process kill, whose restart is the recovery being rehearsed) is not applied again;
// the restart is only counted (`workload_restarts`), never prevented.
// Limitation: the journal keeps the first instance's namespace, so after a followed restart an
// agent crash leaves the new instance's tables to the dead-man switch (inert within its timeout)
// instead of the journal.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "agent/backend_module.h"
#include "agent/fault_backend.h"
#include "agent/workloads/workload.h"

namespace faultline::agent {

namespace host {
class NetnsThread;
}

// Makes a backend for the namespace the calling thread is in (called on the NetnsThread), for
// `workload` (e.g. a process backend scoped to its processes). Must not start threads or open
// sockets elsewhere than on the calling thread.
using NetnsBackendFactory = std::function<Result<NetnsBackend>(const workloads::Workload&)>;

// The workload as it is now, for the restart policy: same workload, possibly a new instance
// (another netns identity). NOT_FOUND when it no longer exists. Called without locks held.
using WorkloadResolver = std::function<Result<workloads::Workload>(const workloads::Workload&)>;

// The default resolver: the same netns path's current identity (a runtime-free handle recreated
// at the same path is the same workload restarted). Discovery's resolver (by container or pod
// id) replaces it where a runtime found the workload.
Result<workloads::Workload> ResolveByNetnsPath(const workloads::Workload& workload);

// The workload carried by an ApplyFaultRequest (resolved_workload), as discovery's struct.
// INVALID_ARGUMENT when the netns path is not absolute or its identity is missing.
Result<workloads::Workload> WorkloadFromProto(const v1::Workload& proto);

class WorkloadRouter final : public FaultBackend {
 public:
  // `host` serves the host (and Kind/Validate/DetectCapability); `factory` makes the per-netns
  // instances. `deadline` bounds each call on a namespace's thread (an apply, a revert).
  WorkloadRouter(std::unique_ptr<FaultBackend> host, NetnsBackendFactory factory,
                 std::chrono::milliseconds deadline = std::chrono::seconds(20));
  ~WorkloadRouter() override;

  std::string Kind() const override { return host_->Kind(); }
  Status DetectCapability() override { return host_->DetectCapability(); }
  Status Validate(const v1::FaultSpec& spec) const override { return host_->Validate(spec); }
  bool FollowsRestarts(const v1::FaultSpec& spec) const override {
    return host_->FollowsRestarts(spec);
  }
  Result<std::unique_ptr<FaultHandle>> Apply(const std::string& fault_id,
                                             const v1::FaultSpec& spec) override {
    return host_->Apply(fault_id, spec);
  }
  Status RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) override {
    return host_->RevertOrphan(fault_id, spec);
  }

  // Enters the workload's namespace (FAILED_PRECONDITION when its path names another namespace
  // than the recorded one, NOT_FOUND when it is gone), makes the kind's instance there on first
  // use and applies on its thread (DEADLINE_EXCEEDED past the deadline). The handle's Revert and
  // GetEvidence run on that thread too. Thread-safe.
  Result<std::unique_ptr<FaultHandle>> ApplyInWorkload(
      const std::string& fault_id, const v1::FaultSpec& spec,
      const workloads::Workload& workload) override;
  // After an agent crash: enters the namespace, reverts the fault there with the instance's
  // RevertOrphan and sweeps the kind's leftovers in it. NOT_FOUND when the namespace is gone or
  // its path now names another one (the fault went with the workload). Thread-safe.
  Status RevertOrphanInWorkload(const std::string& fault_id, const v1::FaultSpec& spec,
                                const workloads::Workload& workload) override;

  // Namespaces with an instance now (tests, metrics).
  size_t namespaces() const;

  // Starts a thread that runs CheckRestarts every `interval` with `resolver` until the router is
  // destroyed. Call at most once, before faults are applied.
  void FollowRestarts(WorkloadResolver resolver, std::chrono::milliseconds interval);
  // One pass of the restart policy on the calling thread (what the thread does every interval):
  // returns how many faults were moved to a restarted workload's new namespace. Failures are
  // logged and retried on the next pass. Thread-safe.
  int CheckRestarts(const WorkloadResolver& resolver);

 private:
  struct Place;
  struct Active;
  class Handle;
  // The place of `workload`'s namespace, made (thread + instance) when missing; counts a user.
  Result<std::shared_ptr<Place>> Acquire(const workloads::Workload& workload);
  // Drops a user; the last one removes the place from the map.
  void ReleasePlace(const std::shared_ptr<Place>& place);
  // Hands a reverted fault's instance handle and place to the reaper thread, which drops them
  // (stopping the instance's threads and leaving the namespace took ~20 ms of every container
  // revert on a loaded host, after the fault's effect was already gone). Acquire of the same
  // namespace waits until they are dropped, so a namespace never has two instances at once.
  void Bury(std::pair<uint64_t, uint64_t> key, std::shared_ptr<FaultHandle> inner,
            std::shared_ptr<Place> place);

  std::unique_ptr<FaultBackend> host_;
  const NetnsBackendFactory factory_;
  const std::chrono::milliseconds deadline_;
  mutable std::mutex mu_;
  // Keyed by (dev, ino). Guarded by mu_ (the map; a Place's members are its own).
  std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<Place>> places_;
  std::vector<std::weak_ptr<Active>> active_;  // guarded by mu_: workload faults, for restarts
  // The restart follower (FollowRestarts).
  std::condition_variable follow_cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread follower_;
  // The reaper (Bury): started with the first burial, drains what is buried before it ends.
  struct Remains {
    std::pair<uint64_t, uint64_t> key;
    std::shared_ptr<Place> place;  // dropped after the handle (declared first)
    std::shared_ptr<FaultHandle> inner;
  };
  std::vector<Remains> buried_;                           // guarded by mu_
  std::optional<std::pair<uint64_t, uint64_t>> reaping_;  // guarded by mu_
  std::condition_variable reap_cv_;
  std::thread reaper_;
};

}  // namespace faultline::agent
