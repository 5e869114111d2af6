// Probe runners against real local endpoints: an HTTP server on 127.0.0.1:0 and real programs.
#include "controller/probes/probe_runner.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <string>
#include <thread>

namespace faultline::probes {
namespace {

using experiment::Probe;

// An HTTP server answering GET /body with `body`.
class BodyServer {
 public:
  explicit BodyServer(std::string body) : body_(std::move(body)) {
    server_.Get("/body", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(body_, "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~BodyServer() {
    server_.stop();
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/body"; }

 private:
  std::string body_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

Probe HttpProbeWithRegex(const std::string& url, const std::string& regex) {
  Probe p;
  p.name = "body";
  p.kind = Probe::Kind::kHttp;
  p.http.url = url;
  p.http.body_regex = regex;
  p.timeout = std::chrono::seconds(10);
  return p;
}

class ProbeRunnerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { InitProbes(); }
};

// std::regex matched by recursion and overflowed the stack (SIGSEGV, the whole controller gone)
// on a 30 KB body with a pattern as plain as (a|b)*; RE2 matches it in linear time.
TEST_F(ProbeRunnerTest, LargeBodyRegexDoesNotRecurse) {
  BodyServer server(std::string(30 * 1024, 'a') + "done");
  ProbeOutcome matched = RunProbeOnce(HttpProbeWithRegex(server.Url(), "^(a|b)*done$"));
  EXPECT_TRUE(matched.ok) << matched.detail;
  // Negative control: the same body against a pattern it does not match fails the probe.
  ProbeOutcome unmatched = RunProbeOnce(HttpProbeWithRegex(server.Url(), "^(a|b)*finished$"));
  EXPECT_FALSE(unmatched.ok);
  EXPECT_NE(unmatched.detail.find("body does not match"), std::string::npos) << unmatched.detail;
}

TEST_F(ProbeRunnerTest, LargeCommandOutputRegexDoesNotRecurse) {
  Probe p;
  p.name = "out";
  p.kind = Probe::Kind::kCommand;
  p.command.argv = {"printf", "%s", std::string(30 * 1024, 'b')};
  p.command.output_regex = "^(a|b)+$";
  p.timeout = std::chrono::seconds(10);
  ProbeOutcome matched = RunProbeOnce(p);
  EXPECT_TRUE(matched.ok) << matched.detail;
  p.command.output_regex = "^(a|b)+c$";
  EXPECT_FALSE(RunProbeOnce(p).ok);
}

TEST(CommandProbeAllowlistTest, OnlyListedProgramsRunOnThisHost) {
  experiment::Experiment e;
  Probe local;
  local.name = "local";
  local.kind = Probe::Kind::kCommand;
  local.command.argv = {"/usr/bin/id", "-u"};
  e.probes.push_back(local);
  Status none = CheckCommandProbesAllowed(e, {}, "--allow-command-probe");
  EXPECT_EQ(none.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(none.message().find("none is listed"), std::string::npos) << none.message();
  EXPECT_EQ(CheckCommandProbesAllowed(e, {"/usr/bin/curl"}, "--allow-command-probe").code(),
            StatusCode::kPermissionDenied);
  // A bare name is not the absolute path it might resolve to: exact argv[0] only.
  EXPECT_EQ(CheckCommandProbesAllowed(e, {"id"}, "--allow-command-probe").code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(CheckCommandProbesAllowed(e, {"/usr/bin/id"}, "--allow-command-probe").ok());
  // Probes that run from an agent, and other kinds, are not the controller's to refuse.
  e.probes[0].from = "db";
  EXPECT_TRUE(CheckCommandProbesAllowed(e, {}, "--allow-command-probe").ok());
  Probe http = HttpProbeWithRegex("http://127.0.0.1:1/", "x");
  experiment::Experiment web;
  web.probes.push_back(http);
  EXPECT_TRUE(CheckCommandProbesAllowed(web, {}, "--allow-command-probe").ok());
}

}  // namespace
}  // namespace faultline::probes
