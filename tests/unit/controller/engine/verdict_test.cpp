#include "controller/engine/verdict.h"

#include <gtest/gtest.h>

#include <ostream>
#include <string_view>

namespace faultline::engine {
namespace {

using namespace std::chrono_literals;
using experiment::Objective;

// A probe's samples written as a picture: one sample per second from t=0, '.' a success and
// 'X' a failure.
ProbeRecord Probe(const std::string& name, std::string_view picture) {
  ProbeRecord p;
  p.name = name;
  p.interval = 1s;
  for (size_t i = 0; i < picture.size(); ++i) {
    bool ok = picture[i] == '.';
    p.samples.push_back({Sample{1s * static_cast<int64_t>(i), ok, 10ms}, ok ? "200" : "503"});
  }
  return p;
}

Objective Obj(const std::string& name, Duration within, Duration stable_for,
              Objective::Phase after = Objective::Phase::kInject, std::string probe = "api") {
  Objective o;
  o.name = name;
  o.probe = std::move(probe);
  o.after = after;
  o.recover_within = within;
  o.stable_for = stable_for;
  return o;
}

Objective Detect(const std::string& name, Duration within, std::string probe = "api") {
  Objective o;
  o.name = name;
  o.probe = std::move(probe);
  o.kind = Objective::Kind::kDetect;
  o.detect_within = within;
  return o;
}

Objective Avail(const std::string& name, double share) {
  Objective o;
  o.name = name;
  o.probe = "api";
  o.kind = Objective::Kind::kAvailability;
  o.availability_min = share;
  return o;
}

Objective Latency(const std::string& name, double percentile, Duration below, int min_samples = 0) {
  Objective o;
  o.name = name;
  o.probe = "api";
  o.kind = Objective::Kind::kLatency;
  o.latency.percentile = percentile;
  o.latency.below = below;
  o.latency.min_samples = min_samples > 0 ? min_samples : experiment::MinLatencySamples(percentile);
  return o;
}

// What else a case's run went through (a bit set).
enum Run : unsigned { kClean = 0, kStateUnknown = 1, kAborted = 2, kNeverInjected = 4 };

// One fault on one agent, applied at 10s (t_inject) and reverted at 20s, unless `run` says.
struct Case {
  std::string name;
  std::string_view picture;  // probe "api"
  std::vector<Objective> objectives;
  unsigned run;
  Verdict want;
  std::vector<ObjectiveVerdict> want_objectives;
  std::string want_reason_contains;
};

constexpr auto kInject = Objective::Phase::kInject;
constexpr auto kRevert = Objective::Phase::kRevert;
using OV = ObjectiveVerdict;

// t=0..9 healthy, fault at 10s, failing 10..12, healthy again from 13s, revert at 20s.
constexpr std::string_view kRecoversAt13 = "..........XXX.................";
// Failing from 10s to the end: never recovers (the negative control: failover off).
constexpr std::string_view kNeverRecovers = "..........XXXXXXXXXXXXXXXXXXXX";
// The fault never showed: every sample succeeded.
constexpr std::string_view kNoImpact = "..............................";
// Failing through the fault and 3s after the revert at 20s, healthy from 23s.
constexpr std::string_view kRecoversAfterRevert = "..........XXXXXXXXXXXXX.......";
// The fault bites 4s after it is in effect: last success sent at 13s, first failure at 14s.
constexpr std::string_view kBitesLate = "..............XXX.............";
// Failing since before the fault: no success precedes the first failure in the window.
constexpr std::string_view kFailingFromTheStart = "XXXXXXXXXXXXX.................";
// Samples only before the fault.
constexpr std::string_view kStopsBeforeFault = "..........";

// clang-format off
const Case kCases[] = {
  {"RecoveredWithinTarget", kRecoversAt13, {Obj("failover", 5s, 2s)}, kClean,
   Verdict::kPass, {OV::kPass}, "every objective met"},
  // Recovered at +3s, the truth in [2s, 3.01s] (last failure sent at 12s, first success
  // answered at 13.01s): a target at or past the bracket's upper end passes...
  {"BracketWithinTargetPasses", kRecoversAt13, {Obj("failover", 3010ms, 2s)}, kClean,
   Verdict::kPass, {OV::kPass}, ""},
  // ...one inside the bracket cannot be decided by the samples: FAIL, marked inconclusive, even
  // though the point estimate (3s) equals the target (the old rule passed it)...
  {"TargetInsideTheBracketIsInconclusiveAndFailsSafe", kRecoversAt13, {Obj("failover", 3s, 2s)},
   kClean, Verdict::kFail, {OV::kFail}, "inconclusive"},
  {"TargetAtTheBracketsLowerEndIsInconclusive", kRecoversAt13, {Obj("failover", 2s, 2s)}, kClean,
   Verdict::kFail, {OV::kFail}, "inconclusive"},
  // ...and one below the bracket's lower end fails for certain.
  {"RecoveredSlowerThanTargetFails", kRecoversAt13, {Obj("failover", 1990ms, 2s)}, kClean,
   Verdict::kFail, {OV::kFail}, "slower than the"},
  {"NeverRecoveredFails", kNeverRecovers, {Obj("failover", 15s, 2s)}, kClean,
   Verdict::kFail, {OV::kFail}, "not recovered within"},
  {"StableForLongerThanTheHealthyRunFails", kRecoversAt13, {Obj("failover", 15s, 30s)}, kClean,
   Verdict::kFail, {OV::kFail}, ""},
  {"OneMissedObjectiveFailsTheRun", kRecoversAt13, {Obj("fast", 1s, 0s), Obj("slow", 15s, 0s)},
   kClean, Verdict::kFail, {OV::kFail, OV::kPass}, "objective fast missed"},
  {"UnknownAgentStateIsNeverPass", kRecoversAt13, {Obj("failover", 15s, 2s)}, kStateUnknown,
   Verdict::kError, {OV::kUnknown}, "no recovery is claimed"},
  {"UnknownAgentStateWithNoImpactIsNeverPass", kNoImpact, {Obj("failover", 15s, 0s)},
   kStateUnknown, Verdict::kError, {OV::kUnknown}, ""},
  {"UnknownAgentStateWinsOverAbort", kRecoversAt13, {Obj("failover", 15s, 2s)},
   kStateUnknown | kAborted, Verdict::kError, {OV::kUnknown}, "unknown"},
  {"AbortedIsAborted", kRecoversAt13, {Obj("failover", 15s, 2s)}, kAborted,
   Verdict::kAborted, {OV::kPass}, "abort condition"},
  {"AbortedWhileFailingIsAbortedNotFail", kNeverRecovers, {Obj("failover", 15s, 2s)}, kAborted,
   Verdict::kAborted, {OV::kFail}, ""},
  {"NoImpactPassesWithAWarning", kNoImpact, {Obj("failover", 15s, 2s)}, kClean,
   Verdict::kPass, {OV::kPass}, ""},
  {"NoSampleInTheWindowIsUnknownAndFails", kStopsBeforeFault, {Obj("failover", 15s, 2s)}, kClean,
   Verdict::kFail, {OV::kUnknown}, "no probe samples"},
  {"ObjectiveOnAProbeWithoutSamplesIsUnknown", kRecoversAt13,
   {Obj("failover", 15s, 2s, kInject, "other")}, kClean, Verdict::kFail, {OV::kUnknown}, ""},
  {"NeverInjectedIsUnknownAndFails", kRecoversAt13, {Obj("failover", 15s, 2s)}, kNeverInjected,
   Verdict::kFail, {OV::kUnknown}, "never in effect"},
  {"AfterRevertMeasuredFromTheRevertAck", kRecoversAfterRevert, {Obj("clean", 5s, 2s, kRevert)},
   kClean, Verdict::kPass, {OV::kPass}, ""},
  {"AfterRevertTooSlowFails", kRecoversAfterRevert, {Obj("clean", 2s, 2s, kRevert)}, kClean,
   Verdict::kFail, {OV::kFail}, ""},
  {"DuringFaultWindowEndsAtRevert", kRecoversAfterRevert, {Obj("failover", 15s, 2s)}, kClean,
   Verdict::kFail, {OV::kFail}, "not recovered within"},

  // detect_within: the bracket [last success's send, first failure's answer] against X.
  // kRecoversAt13: truth in [-1s, 0.01s].
  {"DetectedWithinTargetPasses", kRecoversAt13, {Detect("noticed", 1s)}, kClean,
   Verdict::kPass, {OV::kPass}, ""},
  {"DetectedBracketUpperEndAtTargetPasses", kRecoversAt13, {Detect("noticed", 10ms)}, kClean,
   Verdict::kPass, {OV::kPass}, ""},
  // kBitesLate: truth in [3s, 4.01s].
  {"DetectedLaterThanTargetFails", kBitesLate, {Detect("noticed", 2s)}, kClean,
   Verdict::kFail, {OV::kFail}, "later than the 2s target"},
  {"DetectTargetInsideTheBracketIsInconclusive", kBitesLate, {Detect("noticed", 3500ms)},
   kClean, Verdict::kFail, {OV::kFail}, "inconclusive"},
  {"DetectBracketWithinTargetPasses", kBitesLate, {Detect("noticed", 5s)}, kClean,
   Verdict::kPass, {OV::kPass}, ""},
  // The negative control: monitoring that never sees the fault misses the objective.
  {"NeverDetectedFails", kNoImpact, {Detect("noticed", 15s)}, kClean, Verdict::kFail,
   {OV::kFail}, "not detected"},
  // No success before the failure: only the upper end (10.01s - 10s) is known.
  {"DetectWithoutLowerEndPassesOnItsUpperEnd", kFailingFromTheStart, {Detect("noticed", 1s)},
   kClean, Verdict::kPass, {OV::kPass}, ""},
  {"DetectWithoutLowerEndPastTargetIsInconclusive", kFailingFromTheStart,
   {Detect("noticed", 5ms)}, kClean, Verdict::kFail, {OV::kFail}, "not bracketed"},
  {"DetectWithUnknownAgentStateIsNeverPass", kRecoversAt13, {Detect("noticed", 1s)},
   kStateUnknown, Verdict::kError, {OV::kUnknown}, ""},

  // availability: good samples / slots over [10s, 20s). kRecoversAt13: 7 of 10 = 70%.
  {"AvailabilityAtTheLimitPasses", kRecoversAt13, {Avail("avail", 0.7)}, kClean,
   Verdict::kPass, {OV::kPass}, ""},
  {"AvailabilityAboveTheLimitPasses", kRecoversAt13, {Avail("avail", 0.5)}, kClean,
   Verdict::kPass, {OV::kPass}, ""},
  {"AvailabilityJustBelowTheLimitFails", kRecoversAt13, {Avail("avail", 0.71)}, kClean,
   Verdict::kFail, {OV::kFail}, "below the 71% required"},
  {"AvailabilityNeverRecoveredFails", kNeverRecovers, {Avail("avail", 0.5)}, kClean,
   Verdict::kFail, {OV::kFail}, "0.00% of the fault window"},
  {"AvailabilityWithoutSamplesIsUnknown", kStopsBeforeFault, {Avail("avail", 0.5)}, kClean,
   Verdict::kFail, {OV::kUnknown}, "no probe samples"},

  // latency: every sample takes 10ms; kRecoversAt13 has 7 successes in the window.
  {"LatencyBelowTheBoundPasses", kRecoversAt13, {Latency("fast", 50, 20ms)}, kClean,
   Verdict::kPass, {OV::kPass}, ""},
  {"LatencyAtTheBoundFails", kRecoversAt13, {Latency("fast", 50, 10ms)}, kClean,
   Verdict::kFail, {OV::kFail}, "not below 10ms"},
  // p99 needs 100 successful samples by default: 7 cannot tell.
  {"LatencyWithTooFewSamplesIsInconclusive", kRecoversAt13, {Latency("fast", 99, 1s)}, kClean,
   Verdict::kFail, {OV::kFail}, "fewer than the 100 a p99 needs"},
  {"LatencyWithMinSamplesLoweredIsJudged", kRecoversAt13, {Latency("fast", 99, 1s, 5)}, kClean,
   Verdict::kPass, {OV::kPass}, ""},
  {"LatencyWithNoSuccessIsInconclusive", kNeverRecovers, {Latency("fast", 50, 1s)}, kClean,
   Verdict::kFail, {OV::kFail}, "0 successful sample(s)"},

  // Kinds together: one missed objective of any kind fails the run.
  {"AllKindsMetPass", kRecoversAt13,
   {Obj("failover", 5s, 2s), Detect("noticed", 1s), Avail("avail", 0.5), Latency("fast", 50, 1s)},
   kClean, Verdict::kPass, {OV::kPass, OV::kPass, OV::kPass, OV::kPass}, "every objective met"},
  {"AllKindsOnAFailoverThatNeverHappens", kNeverRecovers,
   {Obj("failover", 5s, 2s), Detect("noticed", 1s), Avail("avail", 0.5), Latency("fast", 50, 1s)},
   kClean, Verdict::kFail, {OV::kFail, OV::kPass, OV::kFail, OV::kFail}, ""},
};
// clang-format on

// A failing case is named, not dumped as bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class VerdictTest : public testing::TestWithParam<Case> {};

TEST_P(VerdictTest, Decides) {
  const Case& c = GetParam();
  std::vector<ProbeRecord> probes{Probe("api", c.picture)};
  const bool injected = !(c.run & kNeverInjected);
  FaultOnAgent fa;
  fa.fault_name = "dns";
  fa.agent = "app";
  fa.kind = "dns";
  if (injected) fa.applied_at = 10s;
  fa.reverted_at = 20s;
  fa.state_unknown = c.run & kStateUnknown;
  std::vector<FaultOnAgent> faults{fa};

  VerdictInput in;
  in.objectives = c.objectives;
  in.probes = probes;
  in.faults = faults;
  if (injected) in.t_inject = 10s;
  in.t_revert_start = 20s;
  in.t_revert = 20s;
  in.end_of_observation = 1s * static_cast<int64_t>(c.picture.size());
  in.aborted = c.run & kAborted;
  in.abort_reason = "abort condition: api failing for 20m";

  VerdictOutcome out = DecideVerdict(in);
  EXPECT_EQ(VerdictName(out.verdict), std::string(VerdictName(c.want))) << out.reason;
  ASSERT_EQ(out.objectives.size(), c.want_objectives.size());
  for (size_t i = 0; i < out.objectives.size(); ++i) {
    EXPECT_EQ(ObjectiveVerdictName(out.objectives[i].verdict),
              std::string(ObjectiveVerdictName(c.want_objectives[i])))
        << out.objectives[i].name << ": " << out.objectives[i].note;
    EXPECT_EQ(out.objectives[i].name, c.objectives[i].name);
  }
  EXPECT_NE(out.reason.find(c.want_reason_contains), std::string::npos) << out.reason;
  // The invariant behind every case: a run is never PASS while an agent's state is unknown.
  if (c.run & kStateUnknown) {
    EXPECT_NE(out.verdict, Verdict::kPass);
    for (const auto& o : out.objectives) EXPECT_NE(o.verdict, ObjectiveVerdict::kPass);
  }
}

INSTANTIATE_TEST_SUITE_P(Table, VerdictTest, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<Case>& info) { return info.param.name; });

// One run's timing: fault in effect at 10s, revert began and acknowledged at 20s, observation
// over at 30s; no fault state unknown, not aborted.
VerdictOutcome DecideOn(std::string_view picture, const std::vector<Objective>& objectives) {
  std::vector<ProbeRecord> probes{Probe("api", picture)};
  VerdictInput in;
  in.objectives = objectives;
  in.probes = probes;
  in.t_inject = 10s;
  in.t_revert_start = 20s;
  in.t_revert = 20s;
  in.end_of_observation = 30s;
  return DecideVerdict(in);
}

TEST(VerdictFiguresTest, RecoveryIsMeasuredFromTheLastApplyAck) {
  VerdictOutcome out = DecideOn(kRecoversAt13, {Obj("failover", 15s, 2s)});
  ASSERT_EQ(out.objectives.size(), 1u);
  const RecoveryFigures& f = out.objectives[0].figures;
  ASSERT_TRUE(f.time_to_detect.has_value());
  EXPECT_EQ(*f.time_to_detect, 0s);
  ASSERT_TRUE(f.time_to_recover.has_value());
  EXPECT_EQ(*f.time_to_recover, 3s);
  EXPECT_EQ(f.samples, 10);  // [10s, 20s): the during-fault window ends when revert began
  EXPECT_TRUE(out.warnings.empty());
}

TEST(VerdictFiguresTest, NoImpactIsFlaggedInTheNoteAndTheWarnings) {
  VerdictOutcome out = DecideOn(kNoImpact, {Obj("failover", 15s, 2s)});
  ASSERT_EQ(out.objectives.size(), 1u);
  EXPECT_TRUE(out.objectives[0].figures.no_impact);
  EXPECT_NE(out.objectives[0].note.find("no impact observed"), std::string::npos);
  ASSERT_EQ(out.warnings.size(), 1u);
  EXPECT_NE(out.warnings[0].find("no impact observed"), std::string::npos);
}

TEST(VerdictFiguresTest, InconclusiveMarksOnlyWhatTheSamplesCannotTell) {
  VerdictOutcome out =
      DecideOn(kBitesLate, {Detect("inside", 3500ms), Detect("missed", 2s), Avail("avail", 0.9),
                            Latency("few", 99, 1s), Latency("slow", 50, 10ms)});
  ASSERT_EQ(out.objectives.size(), 5u);
  EXPECT_TRUE(out.objectives[0].inconclusive);
  EXPECT_FALSE(out.objectives[1].inconclusive);
  EXPECT_FALSE(out.objectives[2].inconclusive);
  EXPECT_TRUE(out.objectives[3].inconclusive);
  EXPECT_FALSE(out.objectives[4].inconclusive);
  for (const auto& o : out.objectives) EXPECT_EQ(o.verdict, ObjectiveVerdict::kFail) << o.name;
  EXPECT_EQ(out.objectives[0].target, 3500ms);
  EXPECT_EQ(out.objectives[4].target, 10ms);
}

TEST(VerdictFiguresTest, AvailabilityCountsSkippedSlotsAsNotGood) {
  std::vector<ProbeRecord> probes{Probe("api", kNoImpact)};
  // Two slots in the fault window and one before it were not sent (in-flight bound reached).
  probes[0].skipped = {9500ms, 12500ms, 13500ms};
  std::vector<Objective> objectives{Avail("avail", 0.9)};
  VerdictInput in;
  in.objectives = objectives;
  in.probes = probes;
  in.t_inject = 10s;
  in.t_revert_start = 20s;
  in.t_revert = 20s;
  in.end_of_observation = 30s;
  VerdictOutcome out = DecideVerdict(in);
  ASSERT_EQ(out.objectives.size(), 1u);
  const auto& a = out.objectives[0].availability;
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->good, 10);
  EXPECT_EQ(a->slots, 12);
  EXPECT_EQ(a->skipped, 2);
  EXPECT_DOUBLE_EQ(a->measured, 10.0 / 12);
  EXPECT_EQ(out.objectives[0].verdict, ObjectiveVerdict::kFail) << out.objectives[0].note;
  EXPECT_NE(out.objectives[0].note.find("2 skipped slot(s)"), std::string::npos);
}

TEST(VerdictFiguresTest, LatencyIsTheNearestRankPercentileOfSuccessesInTheWindow) {
  // Successes in the window take 1ms, 2ms, ... 10ms (sent at 10s..19s); a slow success before
  // the fault and slow failures after revert are outside it and do not count.
  ProbeRecord p;
  p.name = "api";
  p.interval = 1s;
  p.samples.push_back({Sample{5s, true, 900ms}, "200"});
  for (int i = 0; i < 10; ++i) {
    p.samples.push_back({Sample{10s + 1s * i, true, 1ms * (10 - i)}, "200"});
  }
  p.samples.push_back({Sample{15500ms, false, 800ms}, "503"});
  p.samples.push_back({Sample{21s, true, 700ms}, "200"});
  std::vector<ProbeRecord> probes{p};
  std::vector<Objective> objectives{Latency("p90", 90, 9500us), Latency("p50", 50, 5ms),
                                    Latency("p95", 95, 1s)};
  VerdictInput in;
  in.objectives = objectives;
  in.probes = probes;
  in.t_inject = 10s;
  in.t_revert_start = 20s;
  in.end_of_observation = 30s;
  VerdictOutcome out = DecideVerdict(in);
  ASSERT_EQ(out.objectives.size(), 3u);
  ASSERT_TRUE(out.objectives[0].latency && out.objectives[0].latency->measured);
  EXPECT_EQ(*out.objectives[0].latency->measured, 9ms);
  EXPECT_EQ(out.objectives[0].latency->samples, 10);
  EXPECT_EQ(out.objectives[0].latency->failures, 1);
  EXPECT_EQ(out.objectives[0].verdict, ObjectiveVerdict::kPass) << out.objectives[0].note;
  // p50 of 1..10ms is 5ms: not below a 5ms bound.
  ASSERT_TRUE(out.objectives[1].latency && out.objectives[1].latency->measured);
  EXPECT_EQ(*out.objectives[1].latency->measured, 5ms);
  EXPECT_EQ(out.objectives[1].verdict, ObjectiveVerdict::kFail);
  EXPECT_FALSE(out.objectives[1].inconclusive);
  // p95 needs 20 samples by default.
  EXPECT_FALSE(out.objectives[2].latency->measured.has_value());
  EXPECT_TRUE(out.objectives[2].inconclusive);
}

TEST(VerdictFiguresTest, MinLatencySamplesResolveThePercentile) {
  EXPECT_EQ(experiment::MinLatencySamples(50), 2);
  EXPECT_EQ(experiment::MinLatencySamples(90), 10);
  EXPECT_EQ(experiment::MinLatencySamples(99), 100);
  EXPECT_EQ(experiment::MinLatencySamples(99.9), 1000);
  EXPECT_EQ(experiment::MinLatencySamples(75), 4);
}

TEST(VerdictFiguresTest, SameInputSameVerdict) {
  // Pure: deciding twice gives the same answer, word for word.
  std::vector<Objective> objectives{Obj("failover", 5s, 2s), Obj("clean", 5s, 0s, kRevert)};
  VerdictOutcome a = DecideOn(kRecoversAt13, objectives);
  VerdictOutcome b = DecideOn(kRecoversAt13, objectives);
  EXPECT_EQ(a.verdict, b.verdict);
  EXPECT_EQ(a.reason, b.reason);
  ASSERT_EQ(a.objectives.size(), b.objectives.size());
  for (size_t i = 0; i < a.objectives.size(); ++i) {
    EXPECT_EQ(a.objectives[i].note, b.objectives[i].note);
  }
}

}  // namespace
}  // namespace faultline::engine
