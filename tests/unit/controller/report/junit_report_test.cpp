#include "controller/report/junit_report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "common/process.h"
#include "tests/unit/controller/report/report_fixture.h"

namespace faultline::report {
namespace {

using testing::Count;
using testing::SampleRun;

TEST(JunitReportTest, PassingRunHasOneGreenTestcasePerObjective) {
  std::string xml = RenderJunit(FromRun(SampleRun(true)));
  EXPECT_EQ(Count(xml, "<testcase "), 2u);
  EXPECT_EQ(Count(xml, "<failure"), 0u);
  EXPECT_EQ(Count(xml, "<error"), 0u);
  EXPECT_NE(xml.find("<testsuite name=\"dynamodb-dns-failover\" tests=\"2\" failures=\"0\" "
                     "errors=\"0\""),
            std::string::npos);
  EXPECT_NE(xml.find("classname=\"faultline.dynamodb-dns-failover\" name=\"automated-failover\""),
            std::string::npos);
  EXPECT_NE(xml.find("<property name=\"run_id\" value=\"r-20261122-190304-abcd\"/>"),
            std::string::npos);
}

// The negative control of the test above: the same run without failover must turn CI red, and
// the failure must say what was measured against what target.
TEST(JunitReportTest, MissedObjectiveIsAFailureWithMeasuredVsTarget) {
  auto m = FromRun(SampleRun(false));
  std::string xml = RenderJunit(m);
  EXPECT_EQ(Count(xml, "<failure "), 1u);
  EXPECT_NE(xml.find("failures=\"1\""), std::string::npos);
  EXPECT_NE(xml.find("<failure message=\"not recovered (target 15.00s)"), std::string::npos);
  // A slow recovery names both figures.
  m.objectives[0].time_to_recover_s = 42.1;
  xml = RenderJunit(m);
  EXPECT_NE(xml.find("message=\"time_to_recover 42.10s &gt; target 15.00s\" "
                     "type=\"ObjectiveMissed\""),
            std::string::npos)
      << xml;
}

TEST(JunitReportTest, AbortedOrErrorRunIsAnErrorOnEveryTestcase) {
  auto m = FromRun(SampleRun(true));
  m.verdict = "ABORTED";
  m.reason = "interrupted (SIGINT)";
  std::string xml = RenderJunit(m);
  EXPECT_EQ(Count(xml, "<error message=\"run ABORTED: interrupted (SIGINT)\" type=\"RunAborted\""),
            2u);
  EXPECT_NE(xml.find("errors=\"2\""), std::string::npos);
  // An ERROR run that never reached its objectives still gives CI one red testcase.
  m.verdict = "ERROR";
  m.reason = "agent unreachable";
  m.objectives.clear();
  xml = RenderJunit(m);
  EXPECT_NE(xml.find("name=\"run\""), std::string::npos);
  EXPECT_NE(xml.find("type=\"RunError\""), std::string::npos);
}

class JunitSchemaTest : public ::testing::Test {
 protected:
  // Validates with xmllint against the bundled XSD; returns xmllint's complaint when invalid.
  std::string Validate(const std::string& xml) {
    char dir[] = "/tmp/rp-junit-XXXXXX";
    EXPECT_NE(mkdtemp(dir), nullptr);
    std::string path = std::string(dir) + "/report.xml";
    std::ofstream(path) << xml;
    auto res = RunProcess(
        {"xmllint", "--noout", "--schema",
         std::string(FAULTLINE_SOURCE_DIR) + "/tests/unit/controller/report/junit.xsd", path},
        std::chrono::seconds(20));
    unlink(path.c_str());
    rmdir(dir);
    if (!res.ok()) return "xmllint could not run: " + res.status().message();
    return res->exit_code == 0 ? "" : res->err;
  }
};

TEST_F(JunitSchemaTest, EveryKindOfRunValidates) {
  auto pass = FromRun(SampleRun(true));
  auto fail = FromRun(SampleRun(false));
  auto aborted = pass;
  aborted.verdict = "ABORTED";
  auto error = fail;
  error.verdict = "ERROR";
  error.objectives.clear();
  for (const auto* m : {&pass, &fail, &aborted, &error}) {
    EXPECT_EQ(Validate(RenderJunit(*m)), "") << m->verdict;
  }
}

// The schema check itself can fail: a document missing a required attribute is rejected.
TEST_F(JunitSchemaTest, SchemaRejectsAMalformedReport) {
  std::string xml = RenderJunit(FromRun(SampleRun(true)));
  auto at = xml.find(" tests=\"2\" failures=\"0\" errors=\"0\" skipped");
  ASSERT_NE(at, std::string::npos);
  xml.erase(at, 10);  // the testsuite's required tests="2"
  EXPECT_NE(Validate(xml), "");
}

TEST_F(JunitSchemaTest, HostileStringsStayWellFormedAndValid) {
  auto m = FromRun(SampleRun(false));
  m.experiment = "exp\"><testcase name=\"injected";
  m.objectives[0].name = "a&b <c> 'd'";
  m.objectives[0].note = std::string("bell\x07 and bad utf-8 \xC3\x28 and ]]> end");
  m.reason = "reason with \x01 control";
  std::string xml = RenderJunit(m);
  EXPECT_EQ(Count(xml, "<testcase "), 2u);
  EXPECT_EQ(Validate(xml), "");
}

// The timestamp comes from the model (a stored or hand-edited report can carry anything): it was
// written into the attribute unescaped, so a quote closed it and injected markup.
TEST_F(JunitSchemaTest, HostileTimestampIsNeverWrittenRaw) {
  auto m = FromRun(SampleRun(true));
  m.started_at = "2026-01-01\"><x/><y a=\"";
  std::string xml = RenderJunit(m);
  EXPECT_EQ(xml.find("<x/>"), std::string::npos) << xml;
  EXPECT_EQ(xml.find(" timestamp="), std::string::npos) << xml;
  EXPECT_EQ(Validate(xml), "");
  // Negative control: a well-formed instant is kept (without its zone, as the schema wants).
  m.started_at = "2026-03-04T05:06:07.123Z";
  xml = RenderJunit(m);
  EXPECT_NE(xml.find(" timestamp=\"2026-03-04T05:06:07\""), std::string::npos) << xml;
  EXPECT_EQ(Validate(xml), "");
}

}  // namespace
}  // namespace faultline::report
