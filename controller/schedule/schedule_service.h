#pragma once
// What `faultline schedule ...` asks for, behind one interface so the verbs do not care where
// schedules live: today a store opened from --store URL (StoreScheduleService); a controller
// reached over gRPC implements the same interface (and serves it from a StoreScheduleService).

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "controller/store/run_store.h"

namespace faultline::schedule {

class ScheduleService {
 public:
  virtual ~ScheduleService() = default;
  virtual std::string Describe() const = 0;
  // Validates (ValidateSchedule) then stores. INVALID_ARGUMENT naming the field; ALREADY_EXISTS.
  virtual Status Add(const store::Schedule& schedule) = 0;
  // NOT_FOUND when absent.
  virtual Status Remove(const std::string& name) = 0;
  // Idempotent; NOT_FOUND when absent.
  virtual Status SetPaused(const std::string& name, bool paused) = 0;
  virtual Result<std::vector<store::Schedule>> List() = 0;
  // Newest first; empty `name`: every schedule.
  virtual Result<std::vector<store::Firing>> Firings(const std::string& name, int limit) = 0;
};

// A ScheduleService on a RunStore (owned).
std::unique_ptr<ScheduleService> MakeStoreScheduleService(std::unique_ptr<store::RunStore> store);
// A ScheduleService on a RunStore the caller keeps (it must outlive the service): the
// controller serves its schedule RPCs from its own store this way.
std::unique_ptr<ScheduleService> MakeStoreScheduleService(store::RunStore& store);

}  // namespace faultline::schedule
