#include "agent/dry_run_backend.h"

#include <spdlog/spdlog.h>

#include <atomic>

namespace faultline::agent {
namespace {

class DryRunHandle final : public FaultHandle {
 public:
  explicit DryRunHandle(std::string fault_id) : fault_id_(std::move(fault_id)) {}
  Status Revert() override {
    if (!reverted_.exchange(true)) spdlog::info("dry run: fault {} would be reverted", fault_id_);
    return Status::Ok();
  }
  Evidence GetEvidence() const override { return {{"dry_run_applied", 1}}; }

 private:
  const std::string fault_id_;
  std::atomic<bool> reverted_{false};
};

}  // namespace

DryRunBackend::DryRunBackend(std::unique_ptr<FaultBackend> real) : real_(std::move(real)) {}

Result<std::unique_ptr<FaultHandle>> DryRunBackend::Apply(const std::string& fault_id,
                                                          const v1::FaultSpec& spec) {
  spdlog::info("dry run: fault {} ({}) validated and would be applied", fault_id, Kind());
  return std::unique_ptr<FaultHandle>(std::make_unique<DryRunHandle>(fault_id));
}

}  // namespace faultline::agent
