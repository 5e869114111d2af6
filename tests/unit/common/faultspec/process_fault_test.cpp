#include "common/faultspec/process/process_fault.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace faultline::faultspec {
namespace {

v1::ProcessFault Kill() {
  v1::ProcessFault f;
  f.set_action(v1::ProcessFault::KILL);
  f.set_name("x");
  return f;
}

Status Check(const v1::ProcessFault& f) {
  FieldProblems problems;
  ValidateProcessFault(f, "process", &problems);
  return problems.ToStatus();
}

std::string Message(const v1::ProcessFault& f) { return Check(f).message(); }

TEST(ValidateProcessFaultTest, AcceptsEachSelectorAndAction) {
  v1::ProcessFault f = Kill();
  EXPECT_TRUE(Check(f).ok());
  f.set_signal("SIGTERM");
  f.set_interval_ms(500);
  f.set_count(2);
  EXPECT_TRUE(Check(f).ok());
  f.set_pidfile("/run/x/kv.pid");
  EXPECT_TRUE(Check(f).ok());
  f.set_cgroup("/system.slice/kv@1.service/");
  EXPECT_TRUE(Check(f).ok());
  v1::ProcessFault p;
  p.set_action(v1::ProcessFault::PAUSE);
  p.set_cgroup("a/b");
  p.set_percent(50);
  EXPECT_TRUE(Check(p).ok());
}

TEST(ValidateProcessFaultTest, RejectsEveryBadFieldNamingIt) {
  v1::ProcessFault f = Kill();
  f.set_action(v1::ProcessFault::ACTION_UNSPECIFIED);
  EXPECT_NE(Message(f).find("process.action"), std::string::npos);

  f = Kill();
  f.set_signal("SIGSTOP");  // not in the allow-list: pause is its own action
  EXPECT_NE(Message(f).find("process.signal"), std::string::npos);
  f.set_signal("9");
  EXPECT_NE(Message(f).find("process.signal"), std::string::npos);

  f = Kill();
  f.set_interval_ms(10);
  EXPECT_NE(Message(f).find("process.interval_ms"), std::string::npos);

  v1::ProcessFault p;
  p.set_action(v1::ProcessFault::PAUSE);
  p.set_name("x");
  p.set_signal("SIGKILL");
  EXPECT_NE(Message(p).find("process.signal"), std::string::npos);
  p.clear_signal();
  p.set_interval_ms(1000);
  EXPECT_NE(Message(p).find("process.interval_ms"), std::string::npos);

  f = Kill();
  f.clear_selector();
  EXPECT_NE(Message(f).find("exactly one selector"), std::string::npos);
  for (const std::string& bad :
       std::vector<std::string>{"", "a/b", "..", std::string(256, 'a'), "tab\there"}) {
    f.set_name(bad);
    EXPECT_NE(Message(f).find("process.name"), std::string::npos) << bad;
  }
  for (const char* bad : {"", "relative.pid", "/run/../etc/shadow", "/run/x/..", "/run/dir/"}) {
    f.set_pidfile(bad);
    EXPECT_NE(Message(f).find("process.pidfile"), std::string::npos) << bad;
  }
  for (const char* bad : {"", "/", "a/../b", "..", "a//b", "./a", "a/b c", "a/$(x)"}) {
    f.set_cgroup(bad);
    EXPECT_NE(Message(f).find("process.cgroup"), std::string::npos) << bad;
  }
  f = Kill();
  f.set_count(1);
  f.set_percent(10);
  EXPECT_NE(Message(f).find("not both"), std::string::npos);
  f.set_count(0);
  f.set_percent(101);
  EXPECT_NE(Message(f).find("process.percent"), std::string::npos);
}

}  // namespace
}  // namespace faultline::faultspec
