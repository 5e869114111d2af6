#include "common/faultspec/dependency/dependency_fault.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "common/faultspec/peer_rules.h"

namespace faultline::faultspec {
namespace {

using v1::DependencyFault;

DependencyFault BaseFault() {
  DependencyFault f;
  f.mutable_match()->add_hosts("dynamodb.us-east-1.sandbox.test");
  f.mutable_match()->add_remote_ports(8000);
  f.add_toxics()->mutable_latency()->set_latency_us(50000);
  return f;
}

DependencyFault::Http AbortAll(uint32_t status, const std::string& body) {
  DependencyFault::Http h;
  auto* a = h.add_aborts();
  a->set_status(status);
  a->set_body(body);
  a->set_percent(100.0);
  return h;
}

Status Check(const DependencyFault& f) {
  FieldProblems problems;
  ValidateDependencyFault(f, "dependency", &problems);
  return problems.ToStatus();
}

TEST(ValidateDependencyFaultTest, AcceptsAMinimalFault) { EXPECT_TRUE(Check(BaseFault()).ok()); }

TEST(ValidateDependencyFaultTest, RejectsEachBadFieldByName) {
  struct Case {
    std::function<void(DependencyFault*)> edit;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](DependencyFault* f) { f->mutable_match()->clear_remote_ports(); }, "remote_ports"},
      {[](DependencyFault* f) { f->mutable_match()->add_remote_ports(70000); }, "remote_ports[1]"},
      {[](DependencyFault* f) { f->mutable_match()->add_cidrs("10.0.0.0/33"); }, "cidrs[0]"},
      {[](DependencyFault* f) { f->mutable_match()->add_hosts("bad host;rm"); }, "hosts[1]"},
      {[](DependencyFault* f) { f->mutable_match()->add_local_ports(5); }, "local_ports"},
      {[](DependencyFault* f) { f->mutable_match()->set_protocol(v1::NetworkSelector::UDP); },
       "protocol"},
      {[](DependencyFault* f) { f->mutable_toxics(0)->mutable_latency()->set_jitter_us(60000); },
       "toxics[0].latency.jitter_us"},
      {[](DependencyFault* f) { f->mutable_toxics(0)->set_toxicity(1.5); }, "toxics[0].toxicity"},
      {[](DependencyFault* f) { f->add_toxics(); }, "toxics[1]"},
      {[](DependencyFault* f) { f->add_toxics()->mutable_slicer()->set_average_size(0); },
       "toxics[1].slicer.average_size"},
      {[](DependencyFault* f) { f->add_toxics()->mutable_limit_data(); },
       "toxics[1].limit_data.bytes"},
      {[](DependencyFault* f) { *f->mutable_http() = AbortAll(200, ""); }, "http.aborts[0].status"},
      {[](DependencyFault* f) {
         *f->mutable_http() = AbortAll(503, "");
         auto* b = f->mutable_http()->add_aborts();
         b->set_status(400);
         b->set_percent(10);
       },
       "http.aborts"},
      {[](DependencyFault* f) {
         *f->mutable_http() = AbortAll(503, "");
         f->mutable_http()->add_methods("get");
       },
       "http.methods[0]"},
      {[](DependencyFault* f) {
         *f->mutable_http() = AbortAll(503, "");
         f->mutable_http()->set_path_prefix("kv x");
       },
       "http.path_prefix"},
      {[](DependencyFault* f) { f->mutable_http()->set_delay_ms(10); }, "http.delay_ms"},
  };
  for (const auto& c : cases) {
    DependencyFault f = BaseFault();
    c.edit(&f);
    Status s = Check(f);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(s.message().find(c.field), std::string::npos) << s.message() << " / " << c.field;
  }
}

TEST(ValidateDependencyFaultTest, APlainPassThroughIsValid) {
  DependencyFault f = BaseFault();
  f.clear_toxics();
  EXPECT_TRUE(Check(f).ok()) << "no toxic and no http: the proxy only carries the bytes";
}

// Every repeated field has a bound at the agent.
TEST(ValidateDependencyFaultTest, BoundsEveryRepeatedField) {
  DependencyFault f = BaseFault();
  for (int i = 0; i < kMaxToxics; ++i) f.add_toxics()->mutable_latency()->set_latency_us(1);
  EXPECT_NE(Check(f).message().find("dependency.toxics: at most 16"), std::string::npos);

  f = BaseFault();
  *f.mutable_http() = AbortAll(503, "");
  for (int i = 0; i < kMaxHttpAborts; ++i) {
    auto* a = f.mutable_http()->add_aborts();
    a->set_status(500);
    a->set_percent(0.001);
  }
  EXPECT_NE(Check(f).message().find("dependency.http.aborts: at most 8"), std::string::npos);

  f = BaseFault();
  *f.mutable_http() = AbortAll(503, "");
  for (int i = 0; i <= kMaxHttpMethods; ++i) f.mutable_http()->add_methods("GET");
  EXPECT_NE(Check(f).message().find("dependency.http.methods: at most 16"), std::string::npos);

  f = BaseFault();
  for (int i = 0; i < kMaxPorts; ++i) f.mutable_match()->add_remote_ports(9000);
  EXPECT_NE(Check(f).message().find("dependency.match.remote_ports: at most 64"),
            std::string::npos);

  f = BaseFault();
  for (int i = 0; i < kMaxHosts; ++i) f.mutable_match()->add_hosts("h.test");
  EXPECT_NE(Check(f).message().find("dependency.match.hosts: at most 16"), std::string::npos);
}

TEST(ValidateDependencyFaultTest, ReportsEveryProblemNotOnlyTheFirst) {
  DependencyFault f = BaseFault();
  f.mutable_match()->add_cidrs("10.0.0.0/33");
  f.mutable_toxics(0)->set_toxicity(2);
  FieldProblems problems;
  ValidateDependencyFault(f, "dependency", &problems);
  ASSERT_EQ(problems.problems().size(), 2u);
  EXPECT_EQ(problems.problems()[0].field, "dependency.match.cidrs[0]");
  EXPECT_EQ(problems.problems()[1].field, "dependency.toxics[0].toxicity");
}

}  // namespace
}  // namespace faultline::faultspec
