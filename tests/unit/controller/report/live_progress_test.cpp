#include "controller/report/live_progress.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "tests/unit/controller/report/report_fixture.h"

namespace faultline::report {
namespace {

using namespace std::chrono_literals;

class LiveProgressTest : public ::testing::Test {
 protected:
  LiveProgressTest() {
    exp_.name = "dynamodb-dns-failover";
    experiment::Probe p;
    p.name = "orders-api";
    p.interval = 250ms;
    exp_.probes.push_back(p);
    experiment::Objective o;
    o.name = "automated-failover";
    o.probe = "orders-api";
    o.recover_within = 15s;
    o.stable_for = 1s;
    exp_.objectives.push_back(o);
    o.name = "clean-after-revert";
    o.after = experiment::Objective::Phase::kRevert;
    o.recover_within = 30s;
    exp_.objectives.push_back(o);
  }

  // Feeds samples every 250 ms in [from, to) that succeed unless inside [fail_from, fail_to).
  void Feed(LiveProgress& live, Duration from, Duration to, Duration fail_from, Duration fail_to) {
    for (Duration t = from; t < to; t += 250ms) {
      bool ok = t < fail_from || t >= fail_to;
      live.OnSample("orders-api", {engine::Sample{origin_ + t, ok, ok ? 3ms : 1s},
                                   ok ? "200" : "503 dependency unavailable"});
    }
  }

  // Everything written to `f` so far.
  static std::string Contents(std::FILE* f) {
    std::rewind(f);
    std::string out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
    return out;
  }

  std::string Joined(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }

  experiment::Experiment exp_;
  MonoTime origin_{100s};
};

TEST_F(LiveProgressTest, ShowsPhaseObjectivesAgainstTargetAndProbeStatus) {
  std::FILE* sink = std::tmpfile();
  LiveProgress live(exp_, origin_, sink, /*tty=*/false);
  auto lines = live.StatusLines(origin_ + 1s);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[1].find("waiting for the fault · target 15s"), std::string::npos) << lines[1];
  EXPECT_NE(lines[3].find("no sample yet"), std::string::npos);

  Feed(live, 0s, 5s, 99s, 99s);
  live.OnEvent({origin_ + 5s, "inject", "dynamodb-dns applied on fl-app"});
  Feed(live, 5s, 8s, 5500ms, 99s);
  std::string s = Joined(live.StatusLines(origin_ + 8s));
  EXPECT_NE(s.find("inject · 8.0s elapsed · fault in effect 3.0s"), std::string::npos) << s;
  EXPECT_NE(s.find("detected +0.5s · not recovered · 3.0s of 15s target"), std::string::npos) << s;
  EXPECT_NE(s.find("FAIL 503 dependency unavailable · 22 ok / 10 failed"), std::string::npos) << s;

  Feed(live, 8s, 12s, 0s, 9s);
  s = Joined(live.StatusLines(origin_ + 12s));
  EXPECT_NE(s.find("detected +0.5s · recovered +4.0s · target 15s · met"), std::string::npos) << s;
  EXPECT_NE(s.find("waiting for the revert"), std::string::npos) << s;
  std::fclose(sink);
}

// Negative control: a recovery slower than the target is shown as missed.
TEST_F(LiveProgressTest, SlowRecoveryIsShownMissed) {
  std::FILE* sink = std::tmpfile();
  LiveProgress live(exp_, origin_, sink, false);
  live.OnEvent({origin_ + 1s, "inject", "applied"});
  Feed(live, 1s, 25s, 2s, 18s);
  std::string s = Joined(live.StatusLines(origin_ + 25s));
  EXPECT_NE(s.find("recovered +17.0s · target 15s · MISSED"), std::string::npos) << s;
  std::fclose(sink);
}

TEST_F(LiveProgressTest, PlainLinesWithoutEscapesWhenNotATerminal) {
  std::FILE* sink = std::tmpfile();
  {
    LiveProgress live(exp_, origin_, sink, /*tty=*/false);
    live.OnEvent({origin_ + 1500ms, "steady", "waiting for orders-api"});
    live.Redraw(origin_ + 2s);
    live.OnEvent({origin_ + 2s, "verdict", "PASS: every objective met"});
    live.Finish();
  }
  EXPECT_EQ(Contents(sink),
            "[    1.50s] steady   waiting for orders-api\n"
            "[    2.00s] verdict  PASS: every objective met\n");
  std::fclose(sink);
}

TEST_F(LiveProgressTest, TerminalBlockIsRedrawnInPlaceAndErasedAtTheEnd) {
  std::FILE* sink = std::tmpfile();
  {
    LiveProgress live(exp_, origin_, sink, /*tty=*/true);
    live.OnEvent({origin_ + 1s, "steady", "waiting"});
    live.Redraw(origin_ + 2s);
    live.Finish();
  }
  std::string out = Contents(sink);
  // The 4-line block is drawn after the event, erased and drawn again on Redraw, erased on Finish.
  EXPECT_EQ(testing::Count(out, "\033[4F\033[J"), 2u);
  EXPECT_NE(out.find("steady · 2.0s elapsed"), std::string::npos);
  std::fclose(sink);
}

// A probed service or an agent chooses what a probe detail and an event message say: escape
// sequences in them (clear screen, retitle, cursor moves, C1 CSI) must reach the terminal as
// visible text, never as controls.
TEST_F(LiveProgressTest, ControlSequencesFromProbesAndAgentsAreShownNotObeyed) {
  std::FILE* sink = std::tmpfile();
  {
    LiveProgress live(exp_, origin_, sink, /*tty=*/true);
    live.OnSample("orders-api", {engine::Sample{origin_ + 1s, false, 1s},
                                 "503 \033]0;pwned\007\033[2J\xC2\x9B"
                                 "31m\r"});
    live.OnEvent({origin_ + 1s, "inject", "applied on h1\033[1A\033[2Kforged line\nsecond"});
    live.Finish();
  }
  std::string out = Contents(sink);
  for (const char* control : {"\033]0;", "\033[2J", "\033[1A", "\033[2K", "\xC2\x9B", "\007", "\r",
                              "forged line\nsecond"}) {
    EXPECT_EQ(out.find(control), std::string::npos) << "control sent: " << control;
  }
  EXPECT_NE(out.find("\\x1b]0;pwned\\x07\\x1b[2J\\u009b31m\\x0d"), std::string::npos) << out;
  EXPECT_NE(out.find("forged line\\x0asecond"), std::string::npos) << out;
  // Negative control: the block's own escapes are still drawn.
  EXPECT_NE(out.find("\033[?7l"), std::string::npos);
  std::fclose(sink);
}

}  // namespace
}  // namespace faultline::report
