// One suite, two stores: every test runs against SQLite (a temp file) and PostgreSQL (a real
// server started by the test itself, a fresh database per test).
#include "controller/store/run_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "common/process.h"
#include "tests/unit/controller/store/postgres_instance.h"

namespace faultline::store {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

class RunStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    std::string name = "cs_t" + std::to_string(getpid()) + "_" + std::to_string(counter++);
    if (GetParam() == "sqlite") {
      dir_ = fs::temp_directory_path() / name;
      url_ = "sqlite://" + (dir_ / "history.db").string();
    } else {
      auto pg = testing::PostgresInstance::Shared();
      ASSERT_TRUE(pg.ok()) << pg.status().ToString();
      auto url = (*pg)->CreateDatabase(name);
      ASSERT_TRUE(url.ok()) << url.status().ToString();
      url_ = *url;
    }
    store_ = Open();
    ASSERT_NE(store_, nullptr);
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::unique_ptr<RunStore> Open() {
    auto s = OpenRunStore(url_, &clock_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  static RunRecord Run(const std::string& id, int64_t started, const std::string& owner = "") {
    RunRecord r;
    r.id = id;
    r.experiment = "dynamodb-dns-failover";
    r.spec_yaml = "apiVersion: faultline/v1\nkind: Experiment\n";
    r.started_unix_ms = started;
    r.source = "controller";
    r.owner = owner;
    return r;
  }

  static RunFilter Filter(int limit) {
    RunFilter f;
    f.limit = limit;
    return f;
  }

  FakeClock clock_;
  fs::path dir_;
  std::string url_;
  std::unique_ptr<RunStore> store_;
};

TEST_P(RunStoreTest, FinishedRunRoundTripsEveryField) {
  RunRecord r = Run("abc123def456", 1000);
  r.state = RunState::kFinished;
  r.verdict = "FAIL";
  r.ended_unix_ms = 61000;
  r.report_json = R"({"verdict":"FAIL","note":"it's \"quoted\"; DROP TABLE faultline_runs; — ü"})";
  r.source = "schedule:nightly";
  r.owner = "cli:host:42";
  ASSERT_TRUE(store_->CreateRun(r).ok());
  auto got = store_->GetRun("abc123def456");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->run.experiment, r.experiment);
  EXPECT_EQ(got->run.spec_yaml, r.spec_yaml);
  EXPECT_EQ(got->run.state, RunState::kFinished);
  EXPECT_EQ(got->run.verdict, "FAIL");
  EXPECT_EQ(got->run.started_unix_ms, 1000);
  EXPECT_EQ(got->run.ended_unix_ms, 61000);
  EXPECT_EQ(got->run.report_json, r.report_json);
  EXPECT_EQ(got->run.source, "schedule:nightly");
  EXPECT_EQ(got->run.owner, "cli:host:42");
  EXPECT_TRUE(got->annotations.empty());
}

TEST_P(RunStoreTest, RejectsDuplicateAndIncompleteRuns) {
  ASSERT_TRUE(store_->CreateRun(Run("r1", 1)).ok());
  EXPECT_EQ(store_->CreateRun(Run("r1", 2)).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->CreateRun(Run("", 2)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetRun("nope").status().code(), StatusCode::kNotFound);
}

TEST_P(RunStoreTest, FinishRunOnlyFromRunning) {
  ASSERT_TRUE(store_->CreateRun(Run("r1", 1)).ok());
  ASSERT_TRUE(store_->FinishRun("r1", "PASS", 99, "{\"verdict\":\"PASS\"}").ok());
  auto got = store_->GetRun("r1");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->run.state, RunState::kFinished);
  EXPECT_EQ(got->run.verdict, "PASS");
  EXPECT_EQ(got->run.ended_unix_ms, 99);
  EXPECT_EQ(got->run.report_json, "{\"verdict\":\"PASS\"}");
  EXPECT_EQ(store_->FinishRun("r1", "FAIL", 100, "{}").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->GetRun("r1")->run.verdict, "PASS");
  EXPECT_EQ(store_->FinishRun("missing", "PASS", 1, "{}").code(), StatusCode::kNotFound);
}

TEST_P(RunStoreTest, MarkInterruptedTouchesOnlyThatOwnersRunningRuns) {
  ASSERT_TRUE(store_->CreateRun(Run("a1", 1, "ctl-a")).ok());
  ASSERT_TRUE(store_->CreateRun(Run("a2", 2, "ctl-a")).ok());
  ASSERT_TRUE(store_->CreateRun(Run("b1", 3, "ctl-b")).ok());
  ASSERT_TRUE(store_->FinishRun("a2", "PASS", 5, "{}").ok());
  auto n = store_->MarkInterrupted("ctl-a");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(store_->GetRun("a1")->run.state, RunState::kInterrupted);
  EXPECT_EQ(store_->GetRun("a1")->run.ended_unix_ms, clock_.WallUnixMs());
  EXPECT_EQ(store_->GetRun("a2")->run.state, RunState::kFinished);
  EXPECT_EQ(store_->GetRun("b1")->run.state, RunState::kRunning);
  EXPECT_EQ(*store_->MarkInterrupted("ctl-a"), 0);  // idempotent
  // The controller was presumed dead but finished after all: the report is kept, state is not.
  EXPECT_EQ(store_->FinishRun("a1", "PASS", 9, "{\"late\":true}").code(),
            StatusCode::kFailedPrecondition);
  auto late = store_->GetRun("a1");
  EXPECT_EQ(late->run.state, RunState::kInterrupted);
  EXPECT_EQ(late->run.report_json, "{\"late\":true}");
}

TEST_P(RunStoreTest, RunsOfAControllerWithoutPresenceAreOrphans) {
  ASSERT_TRUE(store_->CreateRun(Run("alive", 1, "ctl-a")).ok());
  ASSERT_TRUE(store_->CreateRun(Run("dead", 2, "ctl-b")).ok());
  RunRecord cli = Run("cli", 3, "cli:host:7");
  cli.source = "cli";
  ASSERT_TRUE(store_->CreateRun(cli).ok());
  ASSERT_TRUE(*store_->TryAcquireLeadership(PresenceLock("ctl-a"), "ctl-a", seconds(30)));
  ASSERT_TRUE(*store_->TryAcquireLeadership(PresenceLock("ctl-b"), "ctl-b", seconds(10)));
  EXPECT_EQ(*store_->MarkOrphanedRunsInterrupted(), 0);
  clock_.Advance(seconds(11));  // ctl-b stopped renewing
  EXPECT_EQ(*store_->MarkOrphanedRunsInterrupted(), 1);
  EXPECT_EQ(store_->GetRun("dead")->run.state, RunState::kInterrupted);
  EXPECT_EQ(store_->GetRun("alive")->run.state, RunState::kRunning);
  EXPECT_EQ(store_->GetRun("cli")->run.state, RunState::kRunning);  // no controller to miss
}

TEST_P(RunStoreTest, GetRunByUniquePrefix) {
  ASSERT_TRUE(store_->CreateRun(Run("3fa9c2d1e0b4", 1)).ok());
  ASSERT_TRUE(store_->CreateRun(Run("3fa9ffffffff", 2)).ok());
  EXPECT_EQ(store_->GetRun("3fa9c2")->run.id, "3fa9c2d1e0b4");
  EXPECT_EQ(store_->GetRun("3fa9").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetRun("3fa").status().code(), StatusCode::kNotFound);    // too short
  EXPECT_EQ(store_->GetRun("3fa9%").status().code(), StatusCode::kNotFound);  // no wildcards
}

TEST_P(RunStoreTest, ListRunsNewestFirstFilteredAndLimited) {
  for (int i = 0; i < 5; ++i) {
    RunRecord r = Run("r" + std::to_string(i), 1000 + i);
    r.report_json = "{\"i\":" + std::to_string(i) + "}";
    if (i % 2 == 1) r.experiment = "other";
    ASSERT_TRUE(store_->CreateRun(r).ok());
  }
  auto all = store_->ListRuns(Filter(0));
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 5u);
  EXPECT_EQ((*all)[0].id, "r4");
  EXPECT_EQ((*all)[4].id, "r0");
  EXPECT_TRUE((*all)[0].report_json.empty());  // cheap listing
  RunFilter with_report = Filter(2);
  with_report.with_report = true;
  auto two = store_->ListRuns(with_report);
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[1].id, "r3");
  EXPECT_EQ((*two)[1].report_json, "{\"i\":3}");
  RunFilter other_filter = Filter(10);
  other_filter.experiment = "other";
  auto other = store_->ListRuns(other_filter);
  ASSERT_EQ(other->size(), 2u);
  EXPECT_EQ((*other)[0].id, "r3");
  ASSERT_TRUE(store_->FinishRun("r0", "PASS", 2000, "{}").ok());
  RunFilter running_filter = Filter(10);
  running_filter.state = RunState::kRunning;
  auto running = store_->ListRuns(running_filter);
  EXPECT_EQ(running->size(), 4u);
}

TEST_P(RunStoreTest, AnnotationsAreOrderedAndNeedARun) {
  ASSERT_TRUE(store_->CreateRun(Run("r1", 1)).ok());
  auto second = store_->AddAnnotation({0, "r1", 5000, "bob", "failover done by hand"});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  auto first = store_->AddAnnotation({0, "r1", 0, "alice", "paged on-call"});  // 0: now
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->at_unix_ms, clock_.WallUnixMs());
  EXPECT_NE(first->id, second->id);
  auto got = store_->GetRun("r1");
  ASSERT_EQ(got->annotations.size(), 2u);
  EXPECT_EQ(got->annotations[0].text, "failover done by hand");  // at 5000 < now
  EXPECT_EQ(got->annotations[1].author, "alice");
  EXPECT_EQ(store_->AddAnnotation({0, "nope", 1, "a", "x"}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->AddAnnotation({0, "r1", 1, "a", ""}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(RunStoreTest, SchedulesAddPauseListRemove) {
  Schedule s;
  s.name = "nightly";
  s.spec_yaml = "apiVersion: faultline/v1\n";
  s.cron = "30 2 * * 1-5";
  s.tz = "Europe/Berlin";
  s.concurrency = ConcurrencyPolicy::kAllow;
  s.window = "01:00-05:00";
  s.blackout_dates = {"2026-12-24", "2026-12-31"};
  ASSERT_TRUE(store_->AddSchedule(s).ok());
  EXPECT_EQ(store_->AddSchedule(s).code(), StatusCode::kAlreadyExists);
  Schedule b = s;
  b.name = "a-first";
  b.blackout_dates.clear();
  b.window.clear();
  ASSERT_TRUE(store_->AddSchedule(b).ok());
  auto got = store_->GetSchedule("nightly");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->cron, "30 2 * * 1-5");
  EXPECT_EQ(got->tz, "Europe/Berlin");
  EXPECT_EQ(got->concurrency, ConcurrencyPolicy::kAllow);
  EXPECT_EQ(got->window, "01:00-05:00");
  EXPECT_EQ(got->blackout_dates, s.blackout_dates);
  EXPECT_FALSE(got->paused);
  EXPECT_EQ(got->created_unix_ms, clock_.WallUnixMs());
  ASSERT_TRUE(store_->SetSchedulePaused("nightly", true).ok());
  ASSERT_TRUE(store_->SetSchedulePaused("nightly", true).ok());  // idempotent
  EXPECT_TRUE(store_->GetSchedule("nightly")->paused);
  auto list = store_->ListSchedules();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].name, "a-first");
  EXPECT_TRUE((*list)[0].blackout_dates.empty());
  ASSERT_TRUE(store_->RemoveSchedule("nightly").ok());
  EXPECT_EQ(store_->RemoveSchedule("nightly").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->SetSchedulePaused("nightly", false).code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetSchedule("nightly").status().code(), StatusCode::kNotFound);
}

TEST_P(RunStoreTest, FiringsAreRecordedOnceAndListedNewestFirst) {
  ASSERT_TRUE(store_->RecordFiring({"nightly", 1000, 0, "missed:controller-down", "", "a"}).ok());
  ASSERT_TRUE(store_->RecordFiring({"nightly", 2000, 0, "started", "", "a"}).ok());
  EXPECT_EQ(store_->RecordFiring({"nightly", 2000, 0, "started", "", "b"}).code(),
            StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->UpdateFiring("nightly", 2000, "started", "run42").ok());
  EXPECT_EQ(store_->UpdateFiring("nightly", 3000, "started", "x").code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->RecordFiring({"other", 1500, 0, "skipped:window", "", "a"}).ok());
  auto f = store_->ListFirings("nightly", 10);
  ASSERT_TRUE(f.ok());
  ASSERT_EQ(f->size(), 2u);
  EXPECT_EQ((*f)[0].due_unix_ms, 2000);
  EXPECT_EQ((*f)[0].run_id, "run42");
  EXPECT_EQ((*f)[0].holder, "a");
  EXPECT_EQ((*f)[0].recorded_unix_ms, clock_.WallUnixMs());
  EXPECT_EQ((*f)[1].outcome, "missed:controller-down");
  EXPECT_EQ(store_->ListFirings("", 0)->size(), 3u);
  EXPECT_EQ(**store_->LastFiringDue("nightly"), 2000);
  EXPECT_FALSE(store_->LastFiringDue("none")->has_value());
}

// Several controllers (each its own connection) race for one due time: exactly one wins.
TEST_P(RunStoreTest, ConcurrentControllersRecordADueTimeOnce) {
  constexpr int kControllers = 4;
  std::vector<std::unique_ptr<RunStore>> stores;
  for (int i = 0; i < kControllers; ++i) stores.push_back(Open());
  std::atomic<int> won{0}, lost{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kControllers; ++i) {
    threads.emplace_back([&, i] {
      for (int64_t due = 0; due < 20; ++due) {
        Status s = stores[i]->RecordFiring({"s", due, 0, "started", "", "c" + std::to_string(i)});
        if (s.ok()) {
          ++won;
        } else if (s.code() == StatusCode::kAlreadyExists) {
          ++lost;
        } else {
          ADD_FAILURE() << s.ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(won.load(), 20);
  EXPECT_EQ(lost.load(), 20 * (kControllers - 1));
}

TEST_P(RunStoreTest, LeaderLeaseIsExclusiveUntilItExpires) {
  auto other = Open();
  ASSERT_NE(other, nullptr);
  EXPECT_TRUE(*store_->TryAcquireLeadership("scheduler", "ctl-a", seconds(10)));
  EXPECT_FALSE(*other->TryAcquireLeadership("scheduler", "ctl-b", seconds(10)));
  EXPECT_TRUE(*store_->TryAcquireLeadership("scheduler", "ctl-a", seconds(10)));  // re-entrant
  EXPECT_TRUE(*other->TryAcquireLeadership("other-lock", "ctl-b", seconds(10)));
  EXPECT_EQ((*other->CurrentLeader("scheduler"))->holder, "ctl-a");
  clock_.Advance(seconds(9));
  EXPECT_TRUE(store_->RenewLeadership("scheduler", "ctl-a", seconds(10)).ok());
  clock_.Advance(seconds(9));
  EXPECT_FALSE(*other->TryAcquireLeadership("scheduler", "ctl-b", seconds(10)));  // renewed
  clock_.Advance(seconds(2));  // 11 s after the renewal: lapsed
  EXPECT_FALSE(other->CurrentLeader("scheduler")->has_value());
  EXPECT_TRUE(*other->TryAcquireLeadership("scheduler", "ctl-b", seconds(10)));
  EXPECT_EQ(store_->RenewLeadership("scheduler", "ctl-a", seconds(10)).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->ReleaseLeadership("scheduler", "ctl-a").ok());  // not ours: left alone
  EXPECT_EQ((*store_->CurrentLeader("scheduler"))->holder, "ctl-b");
  EXPECT_TRUE(other->ReleaseLeadership("scheduler", "ctl-b").ok());
  EXPECT_FALSE(store_->CurrentLeader("scheduler")->has_value());
  EXPECT_TRUE(*store_->TryAcquireLeadership("scheduler", "ctl-a", seconds(10)));
}

TEST_P(RunStoreTest, ReopeningKeepsHistory) {
  ASSERT_TRUE(store_->CreateRun(Run("r1", 1)).ok());
  store_.reset();
  store_ = Open();  // the schema is already current: migration is a no-op
  ASSERT_NE(store_, nullptr);
  EXPECT_TRUE(store_->GetRun("r1").ok());
}

TEST_P(RunStoreTest, TokensRoundTripAndRevocationIsStickyAndIdempotent) {
  TokenRecord t;
  t.id = "0123456789abcdef";
  t.name = "game-day laptop";
  t.role = "operator";
  t.team = "orders";
  t.secret_hash = std::string(64, 'a');
  t.expires_unix_ms = 99000;
  t.created_by = "alice (operator)";
  const int64_t t0 = clock_.WallUnixMs();
  ASSERT_TRUE(store_->CreateToken(t).ok());
  EXPECT_EQ(store_->CreateToken(t).code(), StatusCode::kAlreadyExists);
  auto got = store_->GetToken(t.id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->name, t.name);
  EXPECT_EQ(got->role, "operator");
  EXPECT_EQ(got->team, "orders");
  EXPECT_EQ(got->secret_hash, t.secret_hash);
  EXPECT_EQ(got->created_unix_ms, t0);
  EXPECT_EQ(got->expires_unix_ms, 99000);
  EXPECT_EQ(got->revoked_unix_ms, 0);  // negative control: not revoked yet
  EXPECT_EQ(got->created_by, t.created_by);

  clock_.Advance(seconds(2));
  ASSERT_TRUE(store_->RevokeToken(t.id).ok());
  clock_.Advance(seconds(1));
  ASSERT_TRUE(store_->RevokeToken(t.id).ok());  // idempotent, keeps the first time
  EXPECT_EQ(store_->GetToken(t.id)->revoked_unix_ms, t0 + 2000);
  EXPECT_EQ(store_->RevokeToken("ffffffffffffffff").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetToken("ffffffffffffffff").status().code(), StatusCode::kNotFound);
  auto list = store_->ListTokens();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, t.id);
}

TEST_P(RunStoreTest, AuditRecordsAreKeptNewestFirst) {
  for (int i = 1; i <= 3; ++i) {
    AuditRecord a;
    a.at_unix_ms = 1000 * i;
    a.action = "halt";
    a.outcome = i == 2 ? "PERMISSION_DENIED" : "OK";
    a.identity = "bob";
    a.role = "viewer";
    a.team = "orders";
    a.source = "certificate";
    a.peer = "ipv4:127.0.0.1:1";
    a.detail = "try " + std::to_string(i) + " 'quoted'";
    ASSERT_TRUE(store_->AppendAudit(a).ok());
  }
  EXPECT_EQ(store_->AppendAudit(AuditRecord{}).code(), StatusCode::kInvalidArgument);
  auto list = store_->ListAudit(2);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].at_unix_ms, 3000);
  EXPECT_EQ((*list)[1].outcome, "PERMISSION_DENIED");
  EXPECT_EQ((*list)[1].detail, "try 2 'quoted'");
  EXPECT_EQ((*list)[1].peer, "ipv4:127.0.0.1:1");
  EXPECT_EQ(store_->ListAudit(0)->size(), 3u);
}

INSTANTIATE_TEST_SUITE_P(Stores, RunStoreTest, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

// SQLite-only: URL forms and schema versioning.
TEST(OpenRunStoreTest, AcceptsPathsAndSqliteUrlsAndRejectsUnknownSchemes) {
  fs::path dir = fs::temp_directory_path() / ("cs_open" + std::to_string(getpid()));
  FakeClock clock;
  auto plain = OpenRunStore((dir / "a" / "plain.db").string(), &clock);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_TRUE(fs::exists(dir / "a" / "plain.db"));
  auto url = OpenRunStore("sqlite://" + (dir / "b.db").string(), &clock);
  ASSERT_TRUE(url.ok());
  EXPECT_EQ((*url)->Describe(), "sqlite://" + (dir / "b.db").string());
  EXPECT_EQ(OpenRunStore("mysql://x/y", &clock).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenRunStore("", &clock).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenRunStore("postgresql:///nodb?host=/nonexistent", &clock).status().code(),
            StatusCode::kUnavailable);
  fs::remove_all(dir);
}

// A PostgreSQL URL carries its password: no error message (and so no log line) may repeat it.
TEST(OpenRunStoreTest, ErrorsNeverCarryThePassword) {
  auto unreachable = OpenRunStore("postgresql://fl:s3cret@127.0.0.1:1/history?connect_timeout=5");
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.status().message().find("s3cret"), std::string::npos)
      << unreachable.status().message();
  auto unknown = OpenRunStore("mysql://fl:s3cret@db.example.test/history");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().message().find("s3cret"), std::string::npos)
      << unknown.status().message();
  EXPECT_NE(unknown.status().message().find("mysql://fl:****@db.example.test/history"),
            std::string::npos)
      << unknown.status().message();
}

TEST(RedactUrlTest, HidesPasswordsAndKeepsTheRest) {
  EXPECT_EQ(RedactUrl("postgresql://fl:s3cret@db:5432/h"), "postgresql://fl:****@db:5432/h");
  EXPECT_EQ(RedactUrl("postgres://fl:p@ss:w@rd@db/h"), "postgres://fl:****@db/h");
  EXPECT_EQ(RedactUrl("postgresql://db/h?user=fl&password=s3cret&sslmode=require"),
            "postgresql://db/h?user=fl&password=****&sslmode=require");
  EXPECT_EQ(RedactUrl("host=db password=s3cret dbname=h"), "host=db password=**** dbname=h");
  // Negative controls: nothing secret, nothing changed.
  EXPECT_EQ(RedactUrl("postgresql://fl@db:5432/h"), "postgresql://fl@db:5432/h");
  EXPECT_EQ(RedactUrl("sqlite:///var/lib/faultline/history.db"),
            "sqlite:///var/lib/faultline/history.db");
}

TEST(OpenRunStoreTest, RefusesASchemaNewerThanItKnows) {
  fs::path dir = fs::temp_directory_path() / ("cs_schema" + std::to_string(getpid()));
  std::string path = (dir / "h.db").string();
  ASSERT_TRUE(OpenRunStore(path).ok());
  ASSERT_TRUE(RunChecked({"sqlite3", path, "INSERT INTO faultline_schema VALUES (999)"}).ok());
  auto s = OpenRunStore(path);
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("upgrade faultline"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace faultline::store
