#include "controller/schedule/scheduler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <thread>

#include "tests/unit/controller/store/postgres_instance.h"

namespace faultline::schedule {
namespace {

namespace fs = std::filesystem;

int64_t Utc(int y, int mo, int d, int h, int mi, int s = 0) {
  tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = s;
  return static_cast<int64_t>(timegm(&t)) * 1000;
}

// FakeClock's wall clock is 1'700'000'000'000 ms + its monotonic time.
void SetWall(FakeClock& clock, int64_t unix_ms) {
  clock.Set(std::chrono::milliseconds(unix_ms - 1'700'000'000'000));
}

store::Schedule Sched(const std::string& name, const std::string& cron, const std::string& tz) {
  store::Schedule s;
  s.name = name;
  s.spec_yaml = "apiVersion: faultline/v1\n";
  s.cron = cron;
  s.tz = tz;
  s.concurrency = store::ConcurrencyPolicy::kAllow;  // the forbid test says so
  return s;
}

SchedulerOptions Opts(const std::string& holder, const std::string& lock = "scheduler") {
  SchedulerOptions o;
  o.holder = holder;
  o.lock = lock;
  return o;
}

// Starts "runs" the way a controller would: a running record with source schedule:<name>.
class FakeLauncher {
 public:
  explicit FakeLauncher(store::RunStore& store, std::string prefix = "run",
                        std::string owner = "ctl-a")
      : store_(store), prefix_(std::move(prefix)), owner_(std::move(owner)) {}
  RunLauncher Fn() {
    return [this](const store::Schedule& s, int64_t due) -> Result<std::string> {
      std::lock_guard<std::mutex> lock(mu_);
      if (fail_) return Unavailable("no agents reachable");
      std::string id = prefix_ + std::to_string(launched_.size());
      store::RunRecord r;
      r.id = id;
      r.experiment = "exp";
      r.spec_yaml = s.spec_yaml;
      r.started_unix_ms = due;
      r.source = "schedule:" + s.name;
      r.owner = owner_;
      if (auto st = store_.CreateRun(r); !st.ok()) return st;
      launched_.push_back(due);
      return id;
    };
  }
  std::vector<int64_t> launched() {
    std::lock_guard<std::mutex> lock(mu_);
    return launched_;
  }
  void set_fail(bool f) { fail_ = f; }

 private:
  store::RunStore& store_;
  std::string prefix_;
  std::string owner_;
  std::mutex mu_;
  std::vector<int64_t> launched_;
  bool fail_ = false;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cs_sched" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    auto s = store::OpenRunStore((dir_ / "h.db").string(), &clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    launcher_ = std::make_unique<FakeLauncher>(*store_);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  void Add(const store::Schedule& s) {
    ASSERT_TRUE(ValidateSchedule(s).ok()) << ValidateSchedule(s).ToString();
    ASSERT_TRUE(store_->AddSchedule(s).ok());
  }

  Scheduler Make(const std::string& holder = "ctl-a") {
    return Scheduler(*store_, clock_, launcher_->Fn(), Opts(holder));
  }

  // Ticks at `unix_ms`; returns the outcomes recorded.
  std::vector<std::string> TickAt(Scheduler& s, int64_t unix_ms) {
    SetWall(clock_, unix_ms);
    auto out = s.Tick();
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    std::vector<std::string> outcomes;
    if (!out.ok()) return outcomes;
    for (const auto& e : out->errors) ADD_FAILURE() << e;
    for (const auto& f : out->recorded) outcomes.push_back(f.outcome);
    return outcomes;
  }

  FakeClock clock_;
  fs::path dir_;
  std::unique_ptr<store::RunStore> store_;
  std::unique_ptr<FakeLauncher> launcher_;
};

using Outcomes = std::vector<std::string>;

TEST_F(SchedulerTest, FiresAtTheRightMinuteOnce) {
  SetWall(clock_, Utc(2026, 11, 22, 7, 0));
  Add(Sched("morning", "30 9 * * *", "Europe/Berlin"));  // 08:30 UTC in November
  Scheduler s = Make();
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 29, 59)), Outcomes{});
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 30, 0)), Outcomes{"started"});
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 30, 5)), Outcomes{});
  EXPECT_EQ(launcher_->launched(), std::vector<int64_t>{Utc(2026, 11, 22, 8, 30)});
  auto firings = store_->ListFirings("morning", 10);
  ASSERT_EQ(firings->size(), 1u);
  EXPECT_EQ((*firings)[0].run_id, "run0");
  EXPECT_EQ((*firings)[0].holder, "ctl-a");
}

TEST_F(SchedulerTest, FiresAtTheRightMinuteAcrossDaylightSavingTime) {
  // Europe/Berlin springs forward at 02:00 on 2026-03-29: the 02:30 run starts at 03:00 CEST.
  SetWall(clock_, Utc(2026, 3, 28, 12, 0));
  Add(Sched("night", "30 2 * * *", "Europe/Berlin"));
  Scheduler s = Make();
  EXPECT_EQ(TickAt(s, Utc(2026, 3, 29, 0, 59, 59)), Outcomes{});
  EXPECT_EQ(TickAt(s, Utc(2026, 3, 29, 1, 0, 0)), Outcomes{"started"});
  EXPECT_EQ(TickAt(s, Utc(2026, 3, 30, 0, 29)), Outcomes{});
  EXPECT_EQ(TickAt(s, Utc(2026, 3, 30, 0, 30)), Outcomes{"started"});  // 02:30 CEST
  EXPECT_EQ(launcher_->launched(),
            (std::vector<int64_t>{Utc(2026, 3, 29, 1, 0), Utc(2026, 3, 30, 0, 30)}));
}

TEST_F(SchedulerTest, OutsideTheWindowIsSkipped) {
  SetWall(clock_, Utc(2026, 11, 22, 7, 30));
  {
    store::Schedule s = Sched("hourly", "0 * * * *", "UTC");
    s.window = "09:00-17:00";
    Add(s);
  }
  Scheduler s = Make();
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 0)), Outcomes{"skipped:window"});
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 9, 0)), Outcomes{"started"});
  EXPECT_EQ(launcher_->launched().size(), 1u);
}

TEST_F(SchedulerTest, BlackoutDateIsSkippedInTheScheduleTimeZone) {
  // 23:30 UTC on the 23rd is 00:30 on the 24th in Berlin: the local date decides.
  SetWall(clock_, Utc(2026, 12, 23, 22, 0));
  {
    store::Schedule s = Sched("xmas", "30 * * * *", "Europe/Berlin");
    s.blackout_dates = {"2026-12-24"};
    Add(s);
  }
  Scheduler s = Make();
  EXPECT_EQ(TickAt(s, Utc(2026, 12, 23, 22, 30)), Outcomes{"started"});
  EXPECT_EQ(TickAt(s, Utc(2026, 12, 23, 23, 30)), Outcomes{"skipped:blackout"});
  EXPECT_EQ(launcher_->launched().size(), 1u);
}

TEST_F(SchedulerTest, ForbidConcurrencySkipsWhileARunIsRunning) {
  SetWall(clock_, Utc(2026, 11, 22, 7, 58));
  store::Schedule forbid = Sched("forbid", "*/5 * * * *", "UTC");
  forbid.concurrency = store::ConcurrencyPolicy::kForbid;
  Add(forbid);
  Add(Sched("allow", "*/5 * * * *", "UTC"));
  Scheduler s = Make();
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 0)), (Outcomes{"started", "started"}));
  // Both first runs are still running.
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 5)), (Outcomes{"started", "skipped:concurrency"}));
  // The forbid schedule's run (run1: "allow" sorts first) finishes: the next one may start.
  ASSERT_TRUE(store_->FinishRun("run1", "PASS", Utc(2026, 11, 22, 8, 6), "{}").ok());
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 10)), (Outcomes{"started", "started"}));
}

TEST_F(SchedulerTest, DueTimesWhileNoControllerRanAreRecordedAsMissed) {
  SetWall(clock_, Utc(2026, 11, 22, 0, 0));
  Add(Sched("hourly", "0 * * * *", "UTC"));
  Scheduler s = Make();
  // The controller comes up at 03:00:30: 01:00 and 02:00 passed unseen; 03:00 is still on time.
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 3, 0, 30)),
            (Outcomes{"missed:controller-down", "missed:controller-down", "started"}));
  // Down again from 03:01 to 04:02 (past the 60 s start deadline): 04:00 is missed.
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 4, 2)), Outcomes{"missed:controller-down"});
  auto f = store_->ListFirings("hourly", 0);
  ASSERT_EQ(f->size(), 4u);
  EXPECT_EQ((*f)[0].due_unix_ms, Utc(2026, 11, 22, 4, 0));
  EXPECT_EQ((*f)[3].due_unix_ms, Utc(2026, 11, 22, 1, 0));
}

TEST_F(SchedulerTest, ALongOutageIsSummedUpNotDropped) {
  SetWall(clock_, Utc(2026, 11, 22, 0, 0));
  Add(Sched("minutely", "* * * * *", "UTC"));
  SchedulerOptions options = Opts("a");
  options.max_recorded_per_tick = 10;
  Scheduler s(*store_, clock_, launcher_->Fn(), options);
  auto out = TickAt(s, Utc(2026, 11, 22, 2, 0, 10));  // 120 due times
  ASSERT_EQ(out.size(), 11u);
  EXPECT_EQ(out[0], "missed:controller-down (+109 earlier due times)");
  EXPECT_EQ(out[10], "started");  // 02:00 is on time
  EXPECT_EQ(**store_->LastFiringDue("minutely"), Utc(2026, 11, 22, 2, 0));
}

TEST_F(SchedulerTest, PausedSchedulesRecordSkipsAndResume) {
  SetWall(clock_, Utc(2026, 11, 22, 7, 30));
  {
    store::Schedule s = Sched("p", "0 * * * *", "UTC");
    s.paused = true;
    Add(s);
  }
  Scheduler s = Make();
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 0)), Outcomes{"skipped:paused"});
  ASSERT_TRUE(store_->SetSchedulePaused("p", false).ok());
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 9, 0)), Outcomes{"started"});
}

TEST_F(SchedulerTest, ALaunchFailureIsRecorded) {
  SetWall(clock_, Utc(2026, 11, 22, 7, 30));
  Add(Sched("f", "0 * * * *", "UTC"));
  Scheduler s = Make();
  launcher_->set_fail(true);
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 0)), Outcomes{"failed:no agents reachable"});
  EXPECT_EQ((*store_->ListFirings("f", 1))[0].outcome, "failed:no agents reachable");
}

TEST_F(SchedulerTest, OnlyTheLeaseHolderActs) {
  SetWall(clock_, Utc(2026, 11, 22, 7, 30));
  Add(Sched("h", "0 * * * *", "UTC"));
  Scheduler a = Make("ctl-a");
  Scheduler b = Make("ctl-b");
  EXPECT_EQ(TickAt(a, Utc(2026, 11, 22, 8, 0)), Outcomes{"started"});
  SetWall(clock_, Utc(2026, 11, 22, 8, 0, 10));
  auto follower = b.Tick();
  ASSERT_TRUE(follower.ok());
  EXPECT_FALSE(follower->leader);
  EXPECT_TRUE(follower->recorded.empty());
  ASSERT_TRUE(a.Resign().ok());  // a shuts down cleanly: b takes over at once
  EXPECT_EQ(TickAt(b, Utc(2026, 11, 22, 9, 0)), Outcomes{"started"});
  SetWall(clock_, Utc(2026, 11, 22, 9, 0, 10));
  EXPECT_FALSE(a.Tick()->leader);
  EXPECT_EQ(launcher_->launched().size(), 2u);
}

TEST_F(SchedulerTest, DueTimesDuringAHaltAreRecordedSkippedHaltedUntilResume) {
  SetWall(clock_, Utc(2026, 11, 22, 7, 58));
  Add(Sched("every-5", "*/5 * * * *", "UTC"));
  std::atomic<bool> halted{false};
  SchedulerOptions o = Opts("ctl-a");
  o.halted = [&halted] { return halted.load(); };
  Scheduler s(*store_, clock_, launcher_->Fn(), o);
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 0)), Outcomes{"started"});  // control: not halted
  halted = true;
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 5)), Outcomes{"skipped:halted"});
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 6)), Outcomes{});  // decided once, not again
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 10)), Outcomes{"skipped:halted"});
  halted = false;
  // Resumed: the skipped due times stay skipped (not started late); the next one starts.
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 11)), Outcomes{});
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 15)), Outcomes{"started"});
  EXPECT_EQ(launcher_->launched(),
            (std::vector<int64_t>{Utc(2026, 11, 22, 8, 0), Utc(2026, 11, 22, 8, 15)}));
  auto firings = store_->ListFirings("every-5", 0);
  ASSERT_EQ(firings->size(), 4u);
  EXPECT_EQ((*firings)[1].outcome, "skipped:halted");
  EXPECT_EQ((*firings)[1].due_unix_ms, Utc(2026, 11, 22, 8, 10));
  EXPECT_TRUE((*firings)[1].run_id.empty());
}

TEST_F(SchedulerTest, APausedScheduleStaysSkippedPausedDuringAHalt) {
  SetWall(clock_, Utc(2026, 11, 22, 7, 58));
  store::Schedule paused = Sched("paused", "0 * * * *", "UTC");
  paused.paused = true;
  Add(paused);
  SchedulerOptions o = Opts("ctl-a");
  o.halted = [] { return true; };
  Scheduler s(*store_, clock_, launcher_->Fn(), o);
  EXPECT_EQ(TickAt(s, Utc(2026, 11, 22, 8, 0)), Outcomes{"skipped:paused"});
}

TEST_F(SchedulerTest, AHaltRecordedInTheStoreIsSeenByEveryControllerAndLiftedByAny) {
  auto recorded = [this] {
    auto r = HaltRecorded(*store_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && *r;
  };
  EXPECT_FALSE(recorded());
  ASSERT_TRUE(RecordHalt(*store_, "ctl-a").ok());
  EXPECT_TRUE(recorded());
  ASSERT_TRUE(RecordHalt(*store_, "ctl-b").ok());  // idempotent, whoever halts again
  // It does not lapse like a scheduling lease.
  SetWall(clock_, clock_.WallUnixMs() + 365LL * 24 * 3600 * 1000);
  EXPECT_TRUE(recorded());
  // Any controller lifts it, not only the one that recorded it.
  ASSERT_TRUE(ClearHalt(*store_).ok());
  EXPECT_FALSE(recorded());
  ASSERT_TRUE(ClearHalt(*store_).ok());  // idempotent
  // The scheduling lease is a different lock: halting does not take leadership.
  ASSERT_TRUE(RecordHalt(*store_, "ctl-a").ok());
  EXPECT_TRUE(*store_->TryAcquireLeadership("scheduler", "ctl-b", std::chrono::seconds(30)));
}

TEST(ValidateScheduleTest, NamesTheBadField) {
  store::Schedule s = Sched("ok", "0 9 * * *", "UTC");
  EXPECT_TRUE(ValidateSchedule(s).ok());
  auto bad = [&](auto mutate) {
    store::Schedule c = s;
    mutate(c);
    return ValidateSchedule(c).message();
  };
  EXPECT_NE(bad([](auto& c) { c.name = "Bad Name"; }).find("schedule name"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.cron = "0 25 * * *"; }).find("cron: cron field 2 (hour)"),
            std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.cron = "0 0 30 2 *"; }).find("never fires"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.tz = "Europe/Nowhere"; }).find("tz: unknown time zone"),
            std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.window = "9-5"; }).find("window:"), std::string::npos);
  EXPECT_NE(bad([](auto& c) { c.blackout_dates = {"2026-02-30"}; }).find("blackout date:"),
            std::string::npos);
}

// Two controllers, each with its own connection to one PostgreSQL database, tick concurrently
// through a day of due times: every due time fires exactly once.
TEST(SchedulerPostgresTest, TwoControllersOnOnePostgresFireEachDueTimeOnce) {
  auto pg = faultline::testing::PostgresInstance::Shared();
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  auto url = (*pg)->CreateDatabase("cs_sched_" + std::to_string(getpid()));
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  FakeClock clock;
  SetWall(clock, Utc(2026, 11, 22, 0, 0));
  auto store_a = store::OpenRunStore(*url, &clock);
  auto store_b = store::OpenRunStore(*url, &clock);
  ASSERT_TRUE(store_a.ok() && store_b.ok());
  store::Schedule every15 = Sched("every-15", "*/15 * * * *", "UTC");
  every15.concurrency = store::ConcurrencyPolicy::kAllow;
  ASSERT_TRUE((*store_a)->AddSchedule(every15).ok());
  FakeLauncher launch_a(**store_a, "runa", "ctl-a"), launch_b(**store_b, "runb", "ctl-b");
  // Both lead (separate lock names) to prove the firing claim alone prevents a double start;
  // the lease is exercised below with a shared lock.
  Scheduler a(**store_a, clock, launch_a.Fn(), Opts("ctl-a", "la"));
  Scheduler b(**store_b, clock, launch_b.Fn(), Opts("ctl-b", "lb"));
  constexpr int kDue = 8;  // two hours of due times
  for (int i = 1; i <= kDue; ++i) {
    SetWall(clock, Utc(2026, 11, 22, 0, 0) + i * 15 * 60'000);
    std::thread ta([&] { EXPECT_TRUE(a.Tick().ok()); });
    std::thread tb([&] { EXPECT_TRUE(b.Tick().ok()); });
    ta.join();
    tb.join();
  }
  EXPECT_EQ(launch_a.launched().size() + launch_b.launched().size(), static_cast<size_t>(kDue));
  auto firings = (*store_a)->ListFirings("every-15", 0);
  ASSERT_EQ(firings->size(), static_cast<size_t>(kDue));
  for (const auto& f : *firings) EXPECT_EQ(f.outcome, "started");

  // With one shared lease only its holder acts; when it stops renewing, the other takes over.
  Scheduler c(**store_a, clock, launch_a.Fn(), Opts("ctl-a"));
  Scheduler d(**store_b, clock, launch_b.Fn(), Opts("ctl-b"));
  SetWall(clock, Utc(2026, 11, 22, 2, 15));
  EXPECT_TRUE(c.Tick()->leader);
  auto follower = d.Tick();
  EXPECT_FALSE(follower->leader);
  EXPECT_TRUE(follower->recorded.empty());
  SetWall(clock, Utc(2026, 11, 22, 2, 30));  // c is gone; its 30 s lease has lapsed
  auto took_over = d.Tick();
  EXPECT_TRUE(took_over->leader);
  // c was killed mid-run: its running runs are marked interrupted by the new leader.
  // (At least c's 02:15 run; ticks 15 min apart with a 30 s lease made earlier ones orphans
  // already.)
  EXPECT_GE(took_over->interrupted, 1);
  // (The list is held: a range-for over *ListRuns(...) would read a destroyed temporary.)
  auto runs = (*store_b)->ListRuns(store::RunFilter());
  ASSERT_TRUE(runs.ok()) << runs.status().message();
  for (const auto& r : *runs) {
    if (r.owner == "ctl-a") {
      EXPECT_EQ(r.state, store::RunState::kInterrupted) << r.id;
    }
  }
  ASSERT_EQ(took_over->recorded.size(), 1u);
  EXPECT_EQ(took_over->recorded[0].holder, "ctl-b");
}

}  // namespace
}  // namespace faultline::schedule
