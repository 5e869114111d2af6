#pragma once
// DryRunBackend: serves a fault kind without touching the host. It validates every spec with
// the real backend's Validate (the same checks a real apply would make first), then records the
// fault and reports it active; revert only records. For trying experiments safely on a real
// fleet (`faultline-agent --dry-run`) and for benchmarks of the control plane.

#include <memory>

#include "agent/fault_backend.h"

namespace faultline::agent {

class DryRunBackend final : public FaultBackend {
 public:
  // `real` supplies Kind() and Validate(); its DetectCapability/Apply are never called.
  explicit DryRunBackend(std::unique_ptr<FaultBackend> real);

  std::string Kind() const override { return real_->Kind(); }
  // Always OK: a dry run needs nothing from the kernel.
  Status DetectCapability() override { return Status::Ok(); }
  Status Validate(const v1::FaultSpec& spec) const override { return real_->Validate(spec); }
  bool FollowsRestarts(const v1::FaultSpec& spec) const override {
    return real_->FollowsRestarts(spec);
  }
  // A handle whose evidence is {"dry_run_applied": 1}; nothing else happens.
  Result<std::unique_ptr<FaultHandle>> Apply(const std::string& fault_id,
                                             const v1::FaultSpec& spec) override;
  // Nothing was applied, so there is nothing to revert: OK.
  Status RevertOrphan(const std::string& fault_id, const v1::FaultSpec& spec) override {
    return Status::Ok();
  }
  // As Apply: nothing enters the workload.
  Result<std::unique_ptr<FaultHandle>> ApplyInWorkload(const std::string& fault_id,
                                                       const v1::FaultSpec& spec,
                                                       const workloads::Workload&) override {
    return Apply(fault_id, spec);
  }
  Status RevertOrphanInWorkload(const std::string&, const v1::FaultSpec&,
                                const workloads::Workload&) override {
    return Status::Ok();
  }

 private:
  std::unique_ptr<FaultBackend> real_;
};

}  // namespace faultline::agent
