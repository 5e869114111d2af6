// The netem latency path through the process seam: a fake `ip`/`tc` plays a kernel with devices,
// their root qdiscs and (optionally) sch_netem. This project's kernel has no sch_netem, so argv
// and state transitions are what can be checked here.
#include "agent/netfilter/netem_qdisc.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>

namespace faultline::agent::netfilter {
namespace {

struct Qdisc {
  std::string kind;
  std::string handle;
};

struct Device {
  bool loopback = false;
  Qdisc root;
  std::vector<Qdisc> children;  // e.g. mq's per-queue qdiscs
  std::string kernel_default;   // what the kernel attaches after `tc qdisc del ... root`
};

struct FakeKernel {
  bool has_netem = true;
  std::string fail_replace_on;  // a device whose netem replace fails
  std::map<std::string, Device> devices;
  std::vector<std::string> calls;

  FakeKernel() {
    devices["lo"] = {true, {"noqueue", "0:"}, {}, "noqueue"};
    devices["eth0"] = {false, {"fq_codel", "0:"}, {}, "fq_codel"};
    devices["veth1"] = {false, {"noqueue", "0:"}, {}, "noqueue"};
    devices["ifb0"] = {false, {"noop", "0:"}, {}, "noop"};  // down: ip shows no UP flag
  }

  static std::string Join(const std::vector<std::string>& argv) {
    std::string cmd;
    for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    return cmd;
  }

  std::string LinksJson() const {
    std::string j = "[";
    for (const auto& [name, d] : devices) {
      if (j.size() > 1) j += ",";
      j += "{\"ifname\":\"" + name + "\",\"flags\":[" +
           (d.loopback              ? "\"LOOPBACK\",\"UP\""
            : d.root.kind == "noop" ? "\"BROADCAST\",\"NOARP\""
                                    : "\"BROADCAST\",\"UP\"") +
           "]}";
    }
    return j + "]";
  }

  static std::string QdiscJson(const Device& d) {
    std::string j = "[{\"kind\":\"" + d.root.kind + "\",\"handle\":\"" + d.root.handle +
                    "\",\"root\":true,\"refcnt\":2,\"options\":{}}";
    for (const auto& c : d.children) {
      j += ",{\"kind\":\"" + c.kind + "\",\"handle\":\"" + c.handle + "\",\"parent\":\":1\"}";
    }
    // An ingress qdisc is untouched by a root replace and must not block netem.
    j += ",{\"kind\":\"ingress\",\"handle\":\"ffff:\",\"parent\":\"ffff:fff1\"}";
    return j + "]";
  }

  ProcessRunner Runner() {
    return [this](const std::vector<std::string>& argv, std::chrono::milliseconds) {
      calls.push_back(Join(argv));
      ProcessResult r;
      r.exit_code = 0;
      if (argv[0] == "ip" && argv.size() == 4 && argv[1] == "-j" && argv[2] == "link") {
        r.out = LinksJson();
        return Result<ProcessResult>(r);
      }
      if (argv[0] != "tc") {
        r.exit_code = 1;
        return Result<ProcessResult>(r);
      }
      // tc -j qdisc show dev X | tc qdisc replace|del dev X root ...
      const bool show = argv[1] == "-j";
      const std::string& dev = show ? argv[5] : argv[4];
      auto it = devices.find(dev);
      if (it == devices.end()) {
        r.exit_code = 1;
        r.err = "Cannot find device \"" + dev + "\"\n";
        return Result<ProcessResult>(r);
      }
      Device& d = it->second;
      if (show) {
        r.out = QdiscJson(d);
      } else if (argv[2] == "del") {
        d.root = {d.kernel_default, "0:"};
        d.children.clear();
      } else if (argv[2] == "replace" && argv.size() > 8 && argv[8] == "prio") {
        d.root = {"prio", argv[7]};
        d.children.clear();
      } else if (argv[1] == "qdisc" && argv[2] == "add" && argv[9] == "netem") {
        if (!has_netem || dev == fail_replace_on) {
          r.exit_code = 2;
          r.err = "Error: Specified qdisc kind is unknown.\n";
        } else {
          d.children.push_back({"netem", argv[8]});
        }
      } else if (argv[1] == "filter") {
        if (d.root.handle != argv[6]) r.exit_code = 2;
      } else if (argv[2] == "replace") {
        d.root = {argv[6], "8001:"};
        d.children.clear();
      }
      return Result<ProcessResult>(r);
    };
  }

  size_t CountCalls(const std::string& prefix) const {
    size_t n = 0;
    for (const auto& c : calls) n += c.rfind(prefix, 0) == 0;
    return n;
  }
};

v1::NetworkFault Latency(uint32_t delay_us, uint32_t jitter_us = 0, bool reorder = false) {
  v1::NetworkFault f;
  f.mutable_latency()->set_delay_us(delay_us);
  f.mutable_latency()->set_jitter_us(jitter_us);
  f.mutable_latency()->set_reorder(reorder);
  return f;
}

TEST(NetemQdiscTest, ChoosesNetemWhenDetectedAndEveryRootQdiscIsTheKernelDefault) {
  FakeKernel k;
  auto d = DecideNetem(LatencyMechanismFlag::kAuto, true, Latency(50'000), k.Runner());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_TRUE(d->use) << d->reason;
  // Loopback and down devices are left alone; every other device is recorded with what it had.
  EXPECT_EQ(d->records, (std::vector<QdiscRecord>{{"eth0", "fq_codel"}, {"veth1", "noqueue"}}));
  EXPECT_EQ(d->args, (std::vector<std::string>{"delay", "50000us"}));
  EXPECT_EQ(k.CountCalls("tc qdisc"), 0u) << "deciding must not change any qdisc";

  ASSERT_TRUE(InstallNetem(k.Runner(), d->records, d->args, 7443).ok());
  EXPECT_EQ(k.devices["eth0"].root.kind, "prio");
  EXPECT_EQ(k.devices["eth0"].root.handle, "fa17:");
  ASSERT_EQ(k.devices["eth0"].children.size(), 1u);
  EXPECT_EQ(k.devices["eth0"].children[0].kind, "netem");
  EXPECT_EQ(k.devices["veth1"].root.kind, "prio");
  EXPECT_EQ(k.devices["lo"].root.kind, "noqueue");
  EXPECT_EQ(k.CountCalls("tc qdisc replace dev eth0 root handle fa17: prio bands 2 priomap 1 1"),
            1u);
  EXPECT_EQ(k.CountCalls("tc qdisc add dev eth0 parent fa17:2 handle fa18: netem delay 50000us"),
            1u);
  // The agent's control port goes around netem, both families, both port fields.
  EXPECT_EQ(k.CountCalls("tc filter add dev eth0 parent fa17: protocol ip prio 1 u32 match ip "
                         "sport 7443 0xffff flowid fa17:1"),
            1u);
  EXPECT_EQ(k.CountCalls("tc filter add dev eth0 parent fa17: protocol ipv6 prio 4 u32 match ip6 "
                         "dport 7443 0xffff flowid fa17:1"),
            1u);
  EXPECT_EQ(k.CountCalls("tc filter add dev veth1"), 4u);
}

TEST(NetemQdiscTest, JitterCorrelationAndNormalDistributionBecomeNetemArguments) {
  v1::NetworkFault f = Latency(100'000, 20'000, /*reorder=*/true);
  f.mutable_latency()->set_correlation_percent(25);
  f.mutable_latency()->set_distribution(v1::NetworkFault::Latency::NORMAL);
  auto a = NetemLatencyArgs(f.latency());
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<std::string>{"delay", "100000us", "20000us", "25%", "distribution",
                                          "normal"}));
  f.mutable_latency()->set_jitter_us(200'000);
  EXPECT_FALSE(NetemLatencyArgs(f.latency()).ok()) << "jitter above delay must be refused";
  EXPECT_FALSE(NetemLatencyArgs(Latency(0).latency()).ok());
}

TEST(NetemQdiscTest, FallsBackToTheDelayLineWhenNetemIsNotDetected) {
  FakeKernel k;
  auto d = DecideNetem(LatencyMechanismFlag::kAuto, false, Latency(50'000), k.Runner());
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->use);
  EXPECT_NE(d->reason.find("not detected"), std::string::npos) << d->reason;
  EXPECT_TRUE(k.calls.empty());
}

TEST(NetemQdiscTest, FallsBackWhenAnyDeviceHasAConfiguredRootQdisc) {
  FakeKernel k;
  k.devices["veth1"].root = {"htb", "1:"};  // someone's shaping: never clobbered
  auto d = DecideNetem(LatencyMechanismFlag::kAuto, true, Latency(50'000), k.Runner());
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->use);
  EXPECT_NE(d->reason.find("veth1"), std::string::npos) << d->reason;
  EXPECT_EQ(k.CountCalls("tc qdisc"), 0u);

  // A default kind added by hand (non-zero handle) is someone's too.
  FakeKernel k2;
  k2.devices["eth0"].root = {"fq_codel", "8002:"};
  auto d2 = DecideNetem(LatencyMechanismFlag::kAuto, true, Latency(50'000), k2.Runner());
  ASSERT_TRUE(d2.ok());
  EXPECT_FALSE(d2->use);
}

TEST(NetemQdiscTest, MqIsDefaultOnlyWithKernelAttachedDefaultChildren) {
  EXPECT_EQ(*DefaultRootQdiscKind(R"([{"kind":"mq","handle":"0:","root":true},)"
                                  R"({"kind":"fq_codel","handle":"0:","parent":":1"},)"
                                  R"({"kind":"pfifo_fast","handle":"0:","parent":":2"}])"),
            "mq");
  EXPECT_FALSE(DefaultRootQdiscKind(R"([{"kind":"mq","handle":"0:","root":true},)"
                                    R"({"kind":"netem","handle":"10:","parent":":1"}])")
                   .ok());
  EXPECT_FALSE(DefaultRootQdiscKind(R"([{"kind":"tbf","handle":"0:","root":true}])").ok());
  EXPECT_FALSE(DefaultRootQdiscKind("not json").ok());
  EXPECT_FALSE(DefaultRootQdiscKind("[]").ok());
}

TEST(NetemQdiscTest, FallsBackForSelectorsNetemCannotExpress) {
  FakeKernel k;
  std::vector<v1::NetworkFault> faults;
  faults.push_back(Latency(1000));
  faults.back().mutable_match()->set_direction(v1::NetworkSelector::INGRESS);
  faults.push_back(Latency(1000));
  faults.back().mutable_match()->add_hosts("db.example");
  faults.push_back(Latency(1000));
  faults.back().mutable_match()->add_remote_ports(5432);
  faults.push_back(Latency(1000));
  faults.back().mutable_match()->add_cidrs("10.0.0.0/8");
  faults.push_back(Latency(1000));
  faults.back().mutable_match()->set_protocol(v1::NetworkSelector::UDP);
  faults.push_back(Latency(1000, 500, /*reorder=*/false));  // netem would reorder
  faults.push_back(v1::NetworkFault());
  faults.back().mutable_loss()->set_percent(10);
  for (const auto& f : faults) {
    EXPECT_NE(NetemUnsupportedReason(f), "") << f.DebugString();
    auto d = DecideNetem(LatencyMechanismFlag::kAuto, true, f, k.Runner());
    ASSERT_TRUE(d.ok());
    EXPECT_FALSE(d->use) << f.DebugString();
  }
  EXPECT_TRUE(k.calls.empty());
  EXPECT_EQ(NetemUnsupportedReason(Latency(1000, 500, /*reorder=*/true)), "");
}

TEST(NetemQdiscTest, LatencyMechanismFlag) {
  EXPECT_EQ(*ParseLatencyMechanismFlag("auto"), LatencyMechanismFlag::kAuto);
  EXPECT_EQ(*ParseLatencyMechanismFlag("delay-line"), LatencyMechanismFlag::kDelayLine);
  EXPECT_EQ(*ParseLatencyMechanismFlag("netem"), LatencyMechanismFlag::kNetem);
  auto bad = ParseLatencyMechanismFlag("tc");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--latency-mechanism"), std::string::npos);

  FakeKernel k;
  // delay-line: never netem, even where it would work.
  auto d = DecideNetem(LatencyMechanismFlag::kDelayLine, true, Latency(1000), k.Runner());
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->use);
  // netem: a clear error instead of a silent fallback.
  auto n = DecideNetem(LatencyMechanismFlag::kNetem, false, Latency(1000), k.Runner());
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(n.status().message().find("not detected"), std::string::npos);
  v1::NetworkFault ingress = Latency(1000);
  ingress.mutable_match()->set_direction(v1::NetworkSelector::INGRESS);
  EXPECT_FALSE(DecideNetem(LatencyMechanismFlag::kNetem, true, ingress, k.Runner()).ok());
  auto ok = DecideNetem(LatencyMechanismFlag::kNetem, true, Latency(1000), k.Runner());
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(ok->use);
}

TEST(NetemQdiscTest, RevertRestoresTheRecordedQdiscsAndIsIdempotent) {
  FakeKernel k;
  auto d = DecideNetem(LatencyMechanismFlag::kAuto, true, Latency(50'000), k.Runner());
  ASSERT_TRUE(d.ok() && d->use);
  ASSERT_TRUE(InstallNetem(k.Runner(), d->records, d->args, 7443).ok());
  ASSERT_TRUE(RestoreQdiscs(k.Runner(), d->records).ok());
  EXPECT_EQ(k.devices["eth0"].root.kind, "fq_codel");
  EXPECT_EQ(k.devices["eth0"].root.handle, "0:");
  EXPECT_EQ(k.devices["veth1"].root.kind, "noqueue");
  const size_t dels = k.CountCalls("tc qdisc del");
  EXPECT_EQ(dels, 2u);
  ASSERT_TRUE(RestoreQdiscs(k.Runner(), d->records).ok());
  EXPECT_EQ(k.CountCalls("tc qdisc del"), dels) << "a second revert must change nothing";
  EXPECT_EQ(k.CountCalls("tc qdisc replace"), 2u) << "only the two prio roots";
}

TEST(NetemQdiscTest, RevertRecreatesTheRecordedKindWhenTheKernelDefaultChanged) {
  FakeKernel k;
  std::vector<QdiscRecord> records = {{"eth0", "fq_codel"}};
  ASSERT_TRUE(InstallNetem(k.Runner(), records, {"delay", "1000us"}, 0).ok());
  k.devices["eth0"].kernel_default = "pfifo_fast";  // net.core.default_qdisc changed meanwhile
  ASSERT_TRUE(RestoreQdiscs(k.Runner(), records).ok());
  EXPECT_EQ(k.devices["eth0"].root.kind, "fq_codel");
  EXPECT_EQ(k.CountCalls("tc qdisc replace dev eth0 root fq_codel"), 1u);
}

TEST(NetemQdiscTest, RevertLeavesAQdiscSomeoneElseInstalledAndAGoneDevice) {
  FakeKernel k;
  std::vector<QdiscRecord> records = {{"eth0", "fq_codel"}, {"veth1", "noqueue"}};
  ASSERT_TRUE(InstallNetem(k.Runner(), records, {"delay", "1000us"}, 0).ok());
  k.devices["eth0"].root = {"htb", "1:"};  // an operator replaced our netem meanwhile
  k.devices.erase("veth1");                // the device went away with our qdisc
  ASSERT_TRUE(RestoreQdiscs(k.Runner(), records).ok());
  EXPECT_EQ(k.devices["eth0"].root.kind, "htb");
  EXPECT_EQ(k.CountCalls("tc qdisc del"), 0u);
}

TEST(NetemQdiscTest, AFailedInstallRestoresTheDevicesAlreadyChanged) {
  FakeKernel k;
  k.fail_replace_on = "veth1";
  std::vector<QdiscRecord> records = {{"eth0", "fq_codel"}, {"veth1", "noqueue"}};
  Status s = InstallNetem(k.Runner(), records, {"delay", "1000us"}, 0);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("veth1"), std::string::npos) << s.message();
  EXPECT_EQ(k.devices["eth0"].root.kind, "fq_codel");
  EXPECT_EQ(k.devices["veth1"].root.kind, "noqueue");
}

TEST(NetemQdiscTest, OrphanRevertRestoresFromTheRecordAndRemovesIt) {
  char tmpl[] = "/tmp/ne-netem-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string record = std::string(tmpl) + "/fault-1";
  FakeKernel k;
  auto d = DecideNetem(LatencyMechanismFlag::kAuto, true, Latency(50'000), k.Runner());
  ASSERT_TRUE(d.ok() && d->use);
  ASSERT_TRUE(WriteQdiscRecords(record, d->records).ok());
  ASSERT_TRUE(InstallNetem(k.Runner(), d->records, d->args, 7443).ok());
  auto read = ReadQdiscRecords(record);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, d->records);
  // The agent crashed: a new process restores from the record alone.
  k.devices["eth0"].kernel_default = "pfifo_fast";
  ASSERT_TRUE(RevertNetemOrphan(k.Runner(), record).ok());
  EXPECT_EQ(k.devices["eth0"].root.kind, "fq_codel");
  EXPECT_EQ(k.devices["veth1"].root.kind, "noqueue");
  EXPECT_FALSE(std::filesystem::exists(record));
  EXPECT_TRUE(RevertNetemOrphan(k.Runner(), record).ok()) << "no record: nothing to do";
  std::filesystem::remove_all(tmpl);
}

TEST(NetemQdiscTest, MalformedRecordIsRefusedWithItsLine) {
  char tmpl[] = "/tmp/ne-netem-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string record = std::string(tmpl) + "/fault-2";
  ASSERT_TRUE(WriteQdiscRecords(record, {{"eth0", "fq_codel"}, {"bad;dev", "noqueue"}}).ok());
  auto read = ReadQdiscRecords(record);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find(":2:"), std::string::npos) << read.status().message();
  std::filesystem::remove_all(tmpl);
}

TEST(NetemQdiscTest, SweepRemovesOnlyFaultlineRootQdiscs) {
  FakeKernel k;
  ASSERT_TRUE(InstallNetem(k.Runner(), {{"eth0", "fq_codel"}}, {"delay", "1000us"}, 0).ok());
  k.devices["veth1"].root = {"netem", "1:"};  // someone else's netem
  auto swept = SweepNetemQdiscs(k.Runner());
  ASSERT_TRUE(swept.ok()) << swept.status().ToString();
  EXPECT_EQ(*swept, std::vector<std::string>{"tc:eth0"});
  EXPECT_EQ(k.devices["eth0"].root.kind, "fq_codel");
  EXPECT_EQ(k.devices["veth1"].root.handle, "1:");
  auto again = SweepNetemQdiscs(k.Runner());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

TEST(NetemQdiscTest, DeviceNamesAreValidatedBeforeTc) {
  EXPECT_TRUE(IsValidDeviceName("eth0"));
  EXPECT_TRUE(IsValidDeviceName("veth-a.1"));
  EXPECT_FALSE(IsValidDeviceName(""));
  EXPECT_FALSE(IsValidDeviceName("a very long device"));
  EXPECT_FALSE(IsValidDeviceName("-x y"));
  EXPECT_FALSE(IsValidDeviceName(".."));
  FakeKernel k;
  EXPECT_FALSE(InstallNetem(k.Runner(), {{"eth0 x", "noqueue"}}, {"delay", "1us"}, 0).ok());
  EXPECT_TRUE(k.calls.empty());
  EXPECT_FALSE(ParseNonLoopbackDevices(R"([{"ifname":"a/b","flags":[]}])").ok());
}

}  // namespace
}  // namespace faultline::agent::netfilter
