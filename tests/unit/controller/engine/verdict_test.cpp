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
