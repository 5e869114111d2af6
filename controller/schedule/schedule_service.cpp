#include "controller/schedule/schedule_service.h"

#include "controller/schedule/scheduler.h"

namespace faultline::schedule {

namespace {

class StoreScheduleService final : public ScheduleService {
 public:
  StoreScheduleService(store::RunStore& store, std::unique_ptr<store::RunStore> owned)
      : owned_(std::move(owned)), store_(&store) {}

  std::string Describe() const override { return store_->Describe(); }

  Status Add(const store::Schedule& schedule) override {
    if (auto s = ValidateSchedule(schedule); !s.ok()) return s;
    return store_->AddSchedule(schedule);
  }
  Status Remove(const std::string& name) override { return store_->RemoveSchedule(name); }
  Status SetPaused(const std::string& name, bool paused) override {
    return store_->SetSchedulePaused(name, paused);
  }
  Result<std::vector<store::Schedule>> List() override { return store_->ListSchedules(); }
  Result<std::vector<store::Firing>> Firings(const std::string& name, int limit) override {
    return store_->ListFirings(name, limit);
  }

 private:
  std::unique_ptr<store::RunStore> owned_;  // null when the caller keeps the store
  store::RunStore* store_;
};

}  // namespace

std::unique_ptr<ScheduleService> MakeStoreScheduleService(std::unique_ptr<store::RunStore> store) {
  store::RunStore& ref = *store;
  return std::make_unique<StoreScheduleService>(ref, std::move(store));
}

std::unique_ptr<ScheduleService> MakeStoreScheduleService(store::RunStore& store) {
  return std::make_unique<StoreScheduleService>(store, nullptr);
}

}  // namespace faultline::schedule
