#pragma once
// The seam between the agent's framework (service, leases, journal) and its fault backends.
// One backend per fault kind (the FaultSpec oneof case); main() registers the built-ins
// explicitly in a FaultRegistry (each made by its folder's BackendModule, agent/backend_module.h),
// tests register fakes.

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent {

namespace workloads {
struct Workload;
}

using Evidence = std::map<std::string, uint64_t>;

// One active fault, as applied by a backend. Owned by the agent until reverted.
class FaultHandle {
 public:
  virtual ~FaultHandle() = default;
  // Removes every effect of the fault (for nftables: deletes table faultline_<fault-id>).
  // Idempotent: a second call returns OK and does nothing. Thread-safe.
  virtual Status Revert() = 0;
  // Counters showing the fault took effect (e.g. {"queries_faulted": 12}). Thread-safe; valid
  // before and after Revert (final values are kept).
  virtual Evidence GetEvidence() const = 0;
};

class FaultBackend {
 public:
  virtual ~FaultBackend() = default;
  // The FaultSpec kind this backend serves: "dns", "network", "dependency".
  virtual std::string Kind() const = 0;
  // Probes the host for what the backend needs (e.g. nftables nat on this kernel). OK when
  // usable, otherwise the reason. Called once at agent start; may touch the kernel briefly.
  virtual Status DetectCapability() = 0;
  // Checks every field of the spec before anything reaches the kernel. No side effects.
  // INVALID_ARGUMENT with a message naming the field.
  virtual Status Validate(const v1::FaultSpec& spec) const = 0;
  // Applies the fault. Precondition: Validate(spec) is OK; fault_id is a valid fault id.
  // On error nothing is left behind.
  virtual Result<std::unique_ptr<FaultHandle>> Apply(const std::string& fault_id,
                                                     const v1::FaultSpec& spec) = 0;
  // Reverts a fault known only from the journal (the agent crashed while it was active), with the
  // inject-time parameters. Idempotent; OK when there was nothing left to revert.
  virtual Status RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) = 0;
  // Whether a fault with `spec` is applied again to a workload restarted during it
  // (WorkloadRouter's restart policy). Default: yes. A kind whose fault is an event rather than a
  // state (a one-shot kill) says no: the restart is then only counted. Pure; thread-safe.
  virtual bool FollowsRestarts(const v1::FaultSpec&) const { return true; }

  // Apply inside a workload (agent/workloads/workload.h): in its network namespace, on its
  // processes, never the host's or a sibling's. The default refuses (FAILED_PRECONDITION: the
  // kind cannot target workloads); WorkloadRouter (agent/workload_router.h) serves it.
  virtual Result<std::unique_ptr<FaultHandle>> ApplyInWorkload(const std::string& fault_id,
                                                               const v1::FaultSpec& spec,
                                                               const workloads::Workload& workload);
  // RevertOrphan of a fault applied inside `workload`. NOT_FOUND when the workload's namespace
  // is gone (the fault went with it: nothing left to revert). Default: FAILED_PRECONDITION.
  virtual Status RevertOrphanInWorkload(const std::string& fault_id, const v1::FaultSpec& spec,
                                        const workloads::Workload& workload);
};

// "dns" for a spec with the dns case set, "" when no kind is set.
std::string FaultKindOf(const v1::FaultSpec& spec);

}  // namespace faultline::agent
