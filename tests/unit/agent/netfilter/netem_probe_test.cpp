// netem detection through the process seam: a fake `ip`/`tc` plays kernels with and without
// sch_netem; the probe must clean up its device either way and the choice must fall back.
#include "agent/netfilter/netem_probe.h"

#include <gtest/gtest.h>

namespace faultline::agent::netfilter {
namespace {

struct FakeKernel {
  bool has_netem = false;
  bool has_veth = true;
  bool has_tc = true;
  bool device = false;
  std::vector<std::string> calls;

  ProcessRunner Runner() {
    return [this](const std::vector<std::string>& argv, std::chrono::milliseconds) {
      std::string cmd;
      for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
      calls.push_back(cmd);
      ProcessResult r;
      r.exit_code = 0;
      if (argv[0] == "tc" && !has_tc) return Result<ProcessResult>(NotFound("no tc"));
      if (argv[0] == "ip" && argv[2] == "add") {
        if (!has_veth || device) {
          r.exit_code = 2;
          r.err = "Error: Unknown device type.\n";
        } else {
          device = true;
        }
      } else if (argv[0] == "ip" && argv[2] == "del") {
        if (!device) r.exit_code = 1;
        device = false;
      } else if (argv[0] == "tc") {
        if (!has_netem || !device) {
          r.exit_code = 2;
          r.err = "Error: Specified qdisc kind is unknown.\n";
        }
      }
      return Result<ProcessResult>(r);
    };
  }
};

TEST(NetemProbeTest, AbsentNetemFallsBackToTheDelayLineAndRemovesTheProbeDevice) {
  FakeKernel k;  // this project's kernel: veth, tc, no sch_netem
  NetemCapability c = DetectNetem(k.Runner(), "probe0");
  EXPECT_FALSE(c.available);
  EXPECT_NE(c.detail.find("qdisc kind is unknown"), std::string::npos) << c.detail;
  EXPECT_FALSE(k.device) << "the probe device must be deleted";
  EXPECT_EQ(k.calls.back(), "ip link del probe0");
  EXPECT_EQ(ChooseLatencyMechanism(c, ""), LatencyMechanism::kDelayLine);
  EXPECT_EQ(ChooseLatencyMechanism(c, "no NFQUEUE"), LatencyMechanism::kNone);
}

TEST(NetemProbeTest, PresentNetemIsChosen) {
  FakeKernel k;
  k.has_netem = true;
  NetemCapability c = DetectNetem(k.Runner(), "probe0");
  EXPECT_TRUE(c.available) << c.detail;
  EXPECT_FALSE(k.device);
  EXPECT_EQ(ChooseLatencyMechanism(c, ""), LatencyMechanism::kNetem);
}

TEST(NetemProbeTest, LeftoverProbeDeviceIsReplacedAndMissingToolsReported) {
  FakeKernel k;
  k.device = true;  // a crash mid-probe left it
  k.has_netem = true;
  EXPECT_TRUE(DetectNetem(k.Runner(), "probe0").available);
  EXPECT_FALSE(k.device);

  FakeKernel no_tc;
  no_tc.has_tc = false;
  NetemCapability c = DetectNetem(no_tc.Runner(), "probe0");
  EXPECT_FALSE(c.available);
  EXPECT_NE(c.detail.find("cannot run tc"), std::string::npos) << c.detail;
  EXPECT_FALSE(no_tc.device);

  FakeKernel no_veth;
  no_veth.has_veth = false;
  EXPECT_FALSE(DetectNetem(no_veth.Runner(), "probe0").available);
}

}  // namespace
}  // namespace faultline::agent::netfilter
