#include "controller/experiment/parser.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/controller/experiment/experiment_text.h"

namespace faultline::experiment {
namespace {

using namespace std::chrono_literals;

using parser_testing::AllErrors;
using parser_testing::ExpectError;
using parser_testing::Replace;
constexpr std::string_view kValid = parser_testing::kValidExperiment;

TEST(ParserTest, FlagshipExperimentParsesClean) {
  const std::string path =
      std::string(FAULTLINE_SOURCE_DIR) + "/experiments/dynamodb-dns-failover.yaml";
  ParseOutcome o = ParseExperimentFile(path);
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  EXPECT_TRUE(o.warnings.empty()) << o.warnings.front().ToString();
  const Experiment& e = *o.experiment;
  EXPECT_EQ(e.name, "dynamodb-dns-failover");
  EXPECT_EQ(e.source_file, path);
  EXPECT_EQ(e.labels.at("team"), "orders");
  ASSERT_EQ(e.targets.size(), 1u);
  EXPECT_EQ(e.targets[0].selector.at("role"), "app");
  EXPECT_EQ(e.targets[0].mode.kind, TargetMode::Kind::kAll);
  ASSERT_EQ(e.faults.size(), 1u);
  EXPECT_EQ(e.faults[0].target, "app");
  EXPECT_EQ(e.faults[0].duration, 20s);
  ASSERT_TRUE(e.faults[0].spec.has_dns());
  EXPECT_EQ(e.faults[0].spec.dns().mode(), faultline::v1::DnsFault::NODATA);
  ASSERT_EQ(e.faults[0].spec.dns().domains_size(), 1);
  EXPECT_EQ(e.faults[0].spec.dns().domains(0), "dynamodb.us-east-1.sandbox.test");
  const Probe* p = e.FindProbe("orders-api");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->kind, Probe::Kind::kHttp);
  EXPECT_EQ(p->http.url, "http://10.77.0.10:8080/orders/42");
  EXPECT_EQ(p->http.expect_status, 200);
  EXPECT_EQ(p->timeout, 1s);
  EXPECT_EQ(p->interval, 250ms);
  EXPECT_EQ(p->from, "controller");
  EXPECT_EQ(e.FindProbe("nope"), nullptr);
  EXPECT_NE(e.FindTarget("app"), nullptr);
  EXPECT_EQ(e.steady_state.probes, std::vector<std::string>{"orders-api"});
  EXPECT_EQ(e.steady_state.hold_for, 3s);
  ASSERT_EQ(e.objectives.size(), 2u);
  EXPECT_EQ(e.objectives[0].after, Objective::Phase::kInject);
  EXPECT_EQ(e.objectives[0].recover_within, 15min);
  EXPECT_EQ(e.objectives[0].stable_for, 3s);
  EXPECT_EQ(e.objectives[1].after, Objective::Phase::kRevert);
  EXPECT_EQ(e.objectives[1].recover_within, 30s);
  EXPECT_EQ(e.objectives[1].stable_for, 2s);
  ASSERT_EQ(e.aborts.size(), 1u);
  EXPECT_EQ(e.aborts[0].failing_for, 20min);
  ASSERT_TRUE(e.max_duration.has_value());
  EXPECT_EQ(*e.max_duration, 30min);
}

TEST(ParserTest, MinimalExperimentParsesWithDefaultsAndNoWarnings) {
  ParseOutcome o = ParseExperimentText(kValid, "min.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  EXPECT_TRUE(o.warnings.empty());
  const Experiment& e = *o.experiment;
  EXPECT_EQ(e.probes[0].timeout, 1s);
  EXPECT_EQ(e.probes[0].http.expect_status, 200);
  EXPECT_EQ(e.objectives[0].stable_for, 0s);
  EXPECT_EQ(e.objectives[0].after, Objective::Phase::kInject);
  EXPECT_EQ(e.steady_state.timeout, 60s);
  EXPECT_FALSE(e.max_duration.has_value());
}

TEST(ParserTest, WrongDnsModeNamesTheAcceptedModes) {
  ParseOutcome o =
      ParseExperimentText(Replace(kValid, "mode: nodata", "mode: blackhole"), "x.yaml");
  const Diagnostic* d = ExpectError(o, "faults[0].dns.mode", 9, 37);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("drop, nxdomain, servfail, nodata, refused, spoof or delay"),
            std::string::npos);
  EXPECT_EQ(d->ToString().rfind("x.yaml:9:37: faults[0].dns.mode: ", 0), 0u) << d->ToString();
}

TEST(ParserTest, MissingDurationIsReportedAtTheFault) {
  ParseOutcome o = ParseExperimentText(Replace(kValid, "    duration: 20s\n", ""), "x.yaml");
  const Diagnostic* d = ExpectError(o, "faults[0].duration", 7, 5);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->message, "missing required field");
}

TEST(ParserTest, UnknownKeyIsReportedAtTheKeyWithASuggestion) {
  ParseOutcome o =
      ParseExperimentText(Replace(kValid, "    interval: 250ms", "    intervall: 250ms"), "x.yaml");
  const Diagnostic* d = ExpectError(o, "probes[0].intervall", 14, 5);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("did you mean 'interval'"), std::string::npos) << d->message;
}

TEST(ParserTest, DurationWithASpaceIsRejected) {
  ParseOutcome o =
      ParseExperimentText(Replace(kValid, "duration: 20s", "duration: 10 s"), "x.yaml");
  const Diagnostic* d = ExpectError(o, "faults[0].duration", 10, 15);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("'10 s'"), std::string::npos) << d->message;
}

TEST(ParserTest, CommandArgvAsAStringIsRejected) {
  ParseOutcome o = ParseExperimentText(Replace(kValid, R"(http: {url: "http://127.0.0.1:1/x"})",
                                               R"(command: {argv: "curl -f http://x"})"),
                                       "x.yaml");
  const Diagnostic* d = ExpectError(o, "probes[0].command.argv", 13, 21);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->message, "argv must be a list; faultline never runs a shell");
}

TEST(ParserTest, CommandProbeWithArgvListParses) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, R"(http: {url: "http://127.0.0.1:1/x"})",
              R"y(command: {argv: [curl, -f, "http://x/;$(rm -rf /)"], output_regex: "^ok"})y"),
      "x.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  const Probe& p = o.experiment->probes[0];
  EXPECT_EQ(p.kind, Probe::Kind::kCommand);
  EXPECT_EQ(p.command.argv, (std::vector<std::string>{"curl", "-f", "http://x/;$(rm -rf /)"}));
  EXPECT_EQ(p.command.output_regex, "^ok");
  EXPECT_EQ(p.command.expect_exit, 0);
}

TEST(ParserTest, UndefinedTargetIsReported) {
  ParseOutcome o = ParseExperimentText(Replace(kValid, "target: app", "target: web"), "x.yaml");
  const Diagnostic* d = ExpectError(o, "faults[0].target", 8, 13);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("unknown target 'web'"), std::string::npos);
}

TEST(ParserTest, ObjectiveOnUnknownProbeIsReported) {
  ParseOutcome o = ParseExperimentText(Replace(kValid, "probe: p,", "probe: q,"), "x.yaml");
  const Diagnostic* d = ExpectError(o, "objectives[0].probe", 17, 22);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("unknown probe 'q'"), std::string::npos);
}

TEST(ParserTest, TabIndentationIsASyntaxErrorWithItsPosition) {
  ParseOutcome o =
      ParseExperimentText(Replace(kValid, "    target: app", "\ttarget: app"), "x.yaml");
  ASSERT_EQ(o.errors.size(), 1u) << AllErrors(o);
  EXPECT_FALSE(o.experiment.has_value());
  const Diagnostic& d = o.errors[0];
  EXPECT_EQ(d.pos.line, 8) << d.ToString();
  EXPECT_EQ(d.pos.column, 1) << d.ToString();
  EXPECT_NE(d.message.find("tab"), std::string::npos) << d.message;
}

TEST(ParserTest, EveryErrorInAFileIsReportedInFileOrder) {
  std::string text = Replace(kValid, "mode: nodata", "mode: blackhole");
  text = Replace(text, "target: app", "target: web");
  text = Replace(text, "    interval: 250ms", "    intervall: 250ms");
  text = Replace(text, "probe: p,", "probe: q,");
  text = Replace(text, "metadata: {name: t}", "metadata: {name: T}");
  ParseOutcome o = ParseExperimentText(text, "x.yaml");
  ASSERT_EQ(o.errors.size(), 5u) << AllErrors(o);
  EXPECT_EQ(o.errors[0].field, "metadata.name");
  EXPECT_EQ(o.errors[1].field, "faults[0].target");
  EXPECT_EQ(o.errors[2].field, "faults[0].dns.mode");
  EXPECT_EQ(o.errors[3].field, "probes[0].intervall");
  EXPECT_EQ(o.errors[4].field, "objectives[0].probe");
  ExpectError(o, "metadata.name", 3, 18);
}

TEST(ParserTest, TargetModesAreParsed) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, "app: {selector: {role: app}}",
              "app: {selector: {role: app}, mode: \"fixed:3\"}\n  db: {selector: {role: db}, "
              "mode: \"percent:50\"}\n  one: {selector: {role: db}, mode: one}"),
      "x.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  const Experiment& e = *o.experiment;
  EXPECT_EQ(e.FindTarget("app")->mode.kind, TargetMode::Kind::kFixed);
  EXPECT_EQ(e.FindTarget("app")->mode.value, 3);
  EXPECT_EQ(e.FindTarget("db")->mode.kind, TargetMode::Kind::kPercent);
  EXPECT_EQ(e.FindTarget("db")->mode.value, 50);
  EXPECT_EQ(e.FindTarget("one")->mode.kind, TargetMode::Kind::kOne);
}

TEST(ParserTest, InvalidTargetModesAreRejected) {
  for (const char* mode : {"\"percent:-5\"", "\"percent:0\"", "\"percent:101\"", "\"fixed:0\"",
                           "\"fixed:x\"", "some", "\"fixed:99999999999999999999999\""}) {
    ParseOutcome o =
        ParseExperimentText(Replace(kValid, "{selector: {role: app}}",
                                    std::string("{selector: {role: app}, mode: ") + mode + "}"),
                            "x.yaml");
    ExpectError(o, "targets.app.mode", 5, 38);
  }
}

TEST(ParserTest, OtherProbeKindsParse) {
  std::string text = Replace(kValid, "  - name: p\n", R"(  - name: t
    tcp: {address: "db.test:5432"}
  - name: d
    dns: {name: db.test, server: "10.77.0.2:53", expect: nxdomain, timeout: 2s}
    interval: 1s
  - name: p
)");
  ParseOutcome o = ParseExperimentText(text, "x.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  const Experiment& e = *o.experiment;
  ASSERT_EQ(e.probes.size(), 3u);
  EXPECT_EQ(e.probes[0].tcp.host, "db.test");
  EXPECT_EQ(e.probes[0].tcp.port, 5432);
  EXPECT_EQ(e.probes[1].kind, Probe::Kind::kDns);
  EXPECT_EQ(e.probes[1].dns.expect, "nxdomain");
  EXPECT_EQ(e.probes[1].dns.server, "10.77.0.2:53");
  EXPECT_EQ(e.probes[1].timeout, 2s);
}

TEST(ParserTest, ProbeFieldErrorsAreReported) {
  struct Case {
    std::string from, to, field;
  };
  const std::string http = R"(http: {url: "http://127.0.0.1:1/x"})";
  for (const Case& c : std::vector<Case>{
           {http, R"(http: {url: "ftp://x/"})", "probes[0].http.url"},
           {http, R"(http: {url: "http:///x"})", "probes[0].http.url"},
           {http, R"(http: {url: "http://x/", expect_status: 600})",
            "probes[0].http.expect_status"},
           {http, R"(http: {url: "http://x/", body_regex: "([a-"})", "probes[0].http.body_regex"},
           {http, R"(tcp: {address: "db.test"})", "probes[0].tcp.address"},
           {http, R"(tcp: {address: "db.test:70000"})", "probes[0].tcp.address"},
           {http, R"(dns: {name: "*.db.test"})", "probes[0].dns.name"},
           {http, R"(dns: {name: db.test, expect: maybe})", "probes[0].dns.expect"},
           {"    interval: 250ms", "    interval: 5ms", "probes[0].interval"},
           {"    interval: 250ms", "    interval: 250ms\n    timeout: 3s", "probes[0].timeout"},
           {"    interval: 250ms", "    interval: 20ms\n    from: app", "probes[0].from"},
           {"    interval: 250ms", "    interval: 250ms\n    from: elsewhere", "probes[0].from"},
       }) {
    ParseOutcome o = ParseExperimentText(Replace(kValid, c.from, c.to), "x.yaml");
    bool found = false;
    for (const Diagnostic& d : o.errors) found |= d.field == c.field;
    EXPECT_TRUE(found) << c.to << " gave:\n" << AllErrors(o);
    EXPECT_FALSE(o.experiment.has_value());
  }
}

TEST(ParserTest, RegexErrorIsExplained) {
  ParseOutcome o =
      ParseExperimentText(Replace(kValid, R"(url: "http://127.0.0.1:1/x")",
                                  R"(url: "http://127.0.0.1:1/x", body_regex: "(unclosed")"),
                          "x.yaml");
  const Diagnostic* d = ExpectError(o, "probes[0].http.body_regex", 13, 53);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("invalid regex '(unclosed'"), std::string::npos) << d->message;
}

TEST(ParserTest, AgentSideProbeRunsFromATargetOfHosts) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, "    interval: 250ms", "    interval: 250ms\n    from: app"), "x.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  EXPECT_EQ(o.experiment->probes[0].from, "app");
}

TEST(ParserTest, AgentSideProbeErrorsNameTheLineAndField) {
  struct Case {
    std::string from, to, says;
  };
  const std::string http = R"(http: {url: "http://127.0.0.1:1/x"})";
  for (const Case& c : std::vector<Case>{
           {http, R"(prometheus: {url: "http://127.0.0.1:9090", query: up, op: "==", value: 1})",
            "prometheus probes run from the controller only"},
           {http, R"(command: {argv: [true]})", "absolute path"},
           {http, R"(grpc_health: {address: "127.0.0.1:1", tls: {ca: /etc/ca.pem}})",
            "cannot name TLS files"},
           {"    interval: 250ms", "    interval: 20ms", "at least 50ms"},
       }) {
    std::string text = c.from == http
                           ? Replace(Replace(kValid, c.from, c.to), "    interval: 250ms",
                                     "    interval: 250ms\n    from: app")
                           : Replace(kValid, c.from, c.to + "\n    from: app");
    ParseOutcome o = ParseExperimentText(text, "x.yaml");
    const Diagnostic* d = ExpectError(o, "probes[0].from", 15, 11);
    ASSERT_NE(d, nullptr) << c.to << ":\n" << AllErrors(o);
    EXPECT_NE(d->message.find(c.says), std::string::npos) << d->message;
  }
}

// `from:` a target with `workloads:` runs the probe inside the picked workloads (issue 14 item 4).
std::string WithWorkloadTarget(std::string text) {
  return Replace(text, "  app: {selector: {role: app}}",
                 "  app: {selector: {role: app}}\n"
                 "  box: {selector: {role: app}, workloads: {runtime: docker, labels: {app: x}}}");
}

TEST(ParserTest, AgentSideProbeRunsFromATargetOfWorkloads) {
  std::string text = WithWorkloadTarget(std::string(kValid));
  text = Replace(text, "    interval: 250ms", "    interval: 250ms\n    from: box");
  ParseOutcome o = ParseExperimentText(text, "x.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  EXPECT_EQ(o.experiment->probes[0].from, "box");
  const Target* box = o.experiment->FindTarget("box");
  ASSERT_NE(box, nullptr);
  EXPECT_TRUE(box->workloads.has_value());
}

TEST(ParserTest, AgentSideProbeFromAWorkloadTargetErrorsNameTheFileLineAndField) {
  struct Case {
    std::string from, to, says;
  };
  const std::string http = R"(http: {url: "http://127.0.0.1:1/x"})";
  for (const Case& c : std::vector<Case>{
           {http, R"(prometheus: {url: "http://127.0.0.1:9090", query: up, op: "==", value: 1})",
            "prometheus probes run from the controller only, not from an agent (inside a "
            "workload)"},
           {http, R"(command: {argv: [true]})", "absolute path"},
           {http, R"(grpc_health: {address: "127.0.0.1:1", tls: {ca: /etc/ca.pem}})",
            "cannot name TLS files"},
           {"    interval: 250ms", "    interval: 20ms",
            "a probe from an agent (inside a workload) needs an interval of at least 50ms"},
       }) {
    std::string text = WithWorkloadTarget(std::string(kValid));
    text = c.from == http ? Replace(Replace(text, c.from, c.to), "    interval: 250ms",
                                    "    interval: 250ms\n    from: box")
                          : Replace(text, c.from, c.to + "\n    from: box");
    ParseOutcome o = ParseExperimentText(text, "exp.yaml");
    // One line further down than with a target of hosts: the extra target line.
    const Diagnostic* d = ExpectError(o, "probes[0].from", 16, 11);
    ASSERT_NE(d, nullptr) << c.to << ":\n" << AllErrors(o);
    EXPECT_EQ(d->ToString().rfind("exp.yaml:16:11: probes[0].from: ", 0), 0u) << d->ToString();
    EXPECT_NE(d->message.find(c.says), std::string::npos) << d->message;
  }
  // A name that is no target at all is still refused, at its line.
  std::string text = WithWorkloadTarget(std::string(kValid));
  text = Replace(text, "    interval: 250ms", "    interval: 250ms\n    from: boxes");
  ParseOutcome o = ParseExperimentText(text, "exp.yaml");
  const Diagnostic* d = ExpectError(o, "probes[0].from", 16, 11);
  ASSERT_NE(d, nullptr) << AllErrors(o);
  EXPECT_NE(d->message.find("must be 'controller' or a target name"), std::string::npos);
}

TEST(ParserTest, DnsDomainsAcceptWildcardsOnlyAsTheFirstLabel) {
  ParseOutcome ok = ParseExperimentText(
      Replace(kValid, "[db.test]", "[\"*.amazonaws.com\", \"db.test.\", under_score.test]"),
      "x.yaml");
  EXPECT_TRUE(ok.ok()) << AllErrors(ok);
  for (const char* bad : {"\"a.*.com\"", "\"*\"", "\"x..y\"", "\"-a b\"", "\"*x.com\"", "\"\""}) {
    ParseOutcome o =
        ParseExperimentText(Replace(kValid, "[db.test]", std::string("[") + bad + "]"), "x.yaml");
    ExpectError(o, "faults[0].dns.domains[0]", 9, 21);
  }
  std::string many = "[";
  for (int i = 0; i < 65; ++i) many += (i ? ", d" : "d") + std::to_string(i) + ".test";
  ParseOutcome o = ParseExperimentText(Replace(kValid, "[db.test]", many + "]"), "x.yaml");
  ExpectError(o, "faults[0].dns.domains", 9, 20);
}

TEST(ParserTest, DnsFaultOptionsParse) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, "dns: {domains: [db.test], mode: nodata}",
              "dns: {domains: [db.test], mode: spoof, match: suffix, record_types: [a, AAAA], "
              "addresses: [10.77.0.99, \"fd00::99\"], ttl: 5s, delay: 100ms, jitter: 20ms, "
              "probability: 25%, scope: {cgroup: system.slice/orders.service, uid: 1000}}"),
      "x.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  const auto& d = o.experiment->faults[0].spec.dns();
  EXPECT_EQ(d.mode(), faultline::v1::DnsFault::SPOOF);
  EXPECT_EQ(d.match(), faultline::v1::DnsFault::SUFFIX);
  ASSERT_EQ(d.record_types_size(), 2);
  EXPECT_EQ(d.record_types(0), "A");
  ASSERT_EQ(d.spoof_addresses_size(), 2);
  EXPECT_EQ(d.spoof_addresses(1), "fd00::99");
  EXPECT_EQ(d.spoof_ttl_s(), 5u);
  EXPECT_EQ(d.delay_ms(), 100u);
  EXPECT_EQ(d.jitter_ms(), 20u);
  EXPECT_DOUBLE_EQ(d.probability(), 0.25);
  EXPECT_EQ(d.cgroup(), "system.slice/orders.service");
  EXPECT_EQ(d.uid(), 1000u);
}

TEST(ParserTest, NegativeCacheExampleParsesClean) {
  ParseOutcome o = ParseExperimentFile(std::string(FAULTLINE_SOURCE_DIR) +
                                       "/experiments/dynamodb-negative-cache.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  EXPECT_TRUE(o.warnings.empty()) << o.warnings.front().ToString();
  const auto& dns = o.experiment->faults.at(0).spec.dns();
  EXPECT_EQ(dns.mode(), faultline::v1::DnsFault::NODATA);
  EXPECT_EQ(dns.negative_ttl_s(), 300u);
  EXPECT_EQ(dns.cgroup(), "system.slice/unbound.service");
  ASSERT_EQ(o.experiment->objectives.size(), 1u);
  EXPECT_EQ(o.experiment->objectives[0].after, Objective::Phase::kRevert);
}

TEST(ParserTest, DnsNegativeTtlParsesAndIsUnsetByDefault) {
  ParseOutcome o = ParseExperimentText(kValid, "x.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  EXPECT_FALSE(o.experiment->faults[0].spec.dns().has_negative_ttl_s());
  for (const auto& [text, want] : std::vector<std::pair<std::string, uint32_t>>{
           {"0s", 0}, {"1s", 1}, {"5m", 300}, {"24h", 86400}}) {
    o = ParseExperimentText(
        Replace(kValid, "dns: {domains: [db.test], mode: nodata}",
                "dns: {domains: [db.test], mode: nxdomain, negative_ttl: " + text + "}"),
        "x.yaml");
    ASSERT_TRUE(o.ok()) << text << ": " << AllErrors(o);
    ASSERT_TRUE(o.experiment->faults[0].spec.dns().has_negative_ttl_s()) << text;
    EXPECT_EQ(o.experiment->faults[0].spec.dns().negative_ttl_s(), want) << text;
  }
}

TEST(ParserTest, DnsFaultOptionErrorsNameTheField) {
  const std::string from = "dns: {domains: [db.test], mode: nodata}";
  struct Case {
    const char* dns;
    const char* field;
  };
  for (const Case& c : std::vector<Case>{
           {"dns: {domains: [db.test], mode: spoof}", "faults[0].dns.addresses"},
           {"dns: {domains: [db.test], mode: spoof, addresses: [db.other]}",
            "faults[0].dns.addresses[0]"},
           {"dns: {domains: [db.test], mode: nodata, addresses: [10.0.0.1]}",
            "faults[0].dns.addresses"},
           {"dns: {domains: [db.test], mode: delay}", "faults[0].dns.delay"},
           {"dns: {domains: [db.test], mode: drop, delay: 1s}", "faults[0].dns.delay"},
           {"dns: {domains: [db.test], mode: delay, delay: 2m}", "faults[0].dns.delay"},
           {"dns: {domains: [db.test], mode: nodata, probability: 0}", "faults[0].dns.probability"},
           {"dns: {domains: [db.test], mode: nodata, probability: 1.5}",
            "faults[0].dns.probability"},
           {"dns: {domains: [db.test], mode: nodata, match: regex}", "faults[0].dns.match"},
           {"dns: {domains: [db.test], mode: nodata, record_types: [BOGUS]}",
            "faults[0].dns.record_types[0]"},
           {"dns: {domains: [db.test], mode: nodata, scope: {cgroup: \"a/../b\"}}",
            "faults[0].dns.scope.cgroup"},
           {"dns: {domains: [db.test], mode: nodata, scope: {uid: -1}}", "faults[0].dns.scope.uid"},
           {"dns: {domains: [db.test], mode: nodata, scope: {}}", "faults[0].dns.scope"},
           {"dns: {domains: [db.test], mode: servfail, negative_ttl: 30s}",
            "faults[0].dns.negative_ttl"},
           {"dns: {domains: [db.test], mode: nodata, negative_ttl: 25h}",
            "faults[0].dns.negative_ttl"},
           {"dns: {domains: [db.test], mode: nodata, negative_ttl: 1500ms}",
            "faults[0].dns.negative_ttl"},
           {"dns: {domains: [db.test], mode: nodata, negative_ttl: -1s}",
            "faults[0].dns.negative_ttl"},
       }) {
    ParseOutcome o = ParseExperimentText(Replace(kValid, from, c.dns), "x.yaml");
    EXPECT_FALSE(o.ok()) << c.dns;
    bool found = false;
    for (const auto& e : o.errors) found |= e.field == c.field;
    EXPECT_TRUE(found) << c.dns << " -> " << AllErrors(o);
  }
}

TEST(ParserTest, AnEmptyDependencyFaultNamesWhatIsMissing) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, "dns: {domains: [db.test], mode: nodata}", "dependency: {}"), "x.yaml");
  const Diagnostic* d = ExpectError(o, "faults[0].dependency.match", 9, 17);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->message, "missing required field");
}

TEST(ParserTest, DuplicateNamesAndKeysAreRejected) {
  std::string text = Replace(kValid, "  - {name: o, probe: p, recover_within: 10s}",
                             "  - {name: o, probe: p, recover_within: 10s}\n"
                             "  - {name: o, probe: p, recover_within: 10s, recover_within: 5s}");
  ParseOutcome o = ParseExperimentText(text, "x.yaml");
  ExpectError(o, "objectives[1].name", 18, 12);
  ExpectError(o, "objectives[1].recover_within", 18, 46);
}

TEST(ParserTest, FaultDurationIsCappedAtOneDay) {
  ParseOutcome o = ParseExperimentText(Replace(kValid, "duration: 20s", "duration: 25h"), "x.yaml");
  const Diagnostic* d = ExpectError(o, "faults[0].duration", 10, 15);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->message, "must be at most 24h, got 25h");
}

TEST(ParserTest, MissingSteadyStateIsAWarningAndLongObjectivesAreNot) {
  std::string text = Replace(kValid, "recover_within: 10s", "recover_within: 5m");
  text = Replace(text, "steady_state: {probes: [p], for: 1s}\n", "");
  ParseOutcome o = ParseExperimentText(text, "x.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  ASSERT_EQ(o.warnings.size(), 1u);
  EXPECT_EQ(o.warnings[0].field, "steady_state");
}

// The objective line of kValid (line 17) replaced by `line`.
ParseOutcome WithObjective(const std::string& line) {
  return ParseExperimentText(
      Replace(kValid, "  - {name: o, probe: p, recover_within: 10s}", "  - " + line), "x.yaml");
}

// The 1-based column of `needle` in `line` as WithObjective writes it.
int Col(const std::string& line, const std::string& needle) {
  return static_cast<int>(("  - " + line).find(needle)) + 1;
}

TEST(ParserTest, GameDayObjectivesParse) {
  std::string text = Replace(kValid, "  - {name: o, probe: p, recover_within: 10s}",
                             "  - {name: o, probe: p, recover_within: 10s}\n"
                             "  - {name: noticed, probe: p, detect_within: 2m}\n"
                             "  - {name: avail, probe: p, availability: 99.5%}\n"
                             "  - {name: avail-share, probe: p, availability: 0.9}\n"
                             "  - {name: fast, probe: p, latency: {percentile: 99, below: 500ms}}\n"
                             "  - name: fast-enough\n"
                             "    probe: p\n"
                             "    latency: {percentile: 99.9, below: 2s, min_samples: 50}\n");
  ParseOutcome o = ParseExperimentText(text, "x.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  const auto& obj = o.experiment->objectives;
  ASSERT_EQ(obj.size(), 6u);
  EXPECT_EQ(obj[0].kind, Objective::Kind::kRecover);
  EXPECT_EQ(obj[1].kind, Objective::Kind::kDetect);
  EXPECT_EQ(obj[1].detect_within, 2min);
  EXPECT_EQ(obj[2].kind, Objective::Kind::kAvailability);
  EXPECT_DOUBLE_EQ(obj[2].availability_min, 0.995);
  EXPECT_DOUBLE_EQ(obj[3].availability_min, 0.9);
  EXPECT_EQ(obj[4].kind, Objective::Kind::kLatency);
  EXPECT_DOUBLE_EQ(obj[4].latency.percentile, 99);
  EXPECT_EQ(obj[4].latency.below, 500ms);
  EXPECT_EQ(obj[4].latency.min_samples, 100);  // the default for p99
  EXPECT_DOUBLE_EQ(obj[5].latency.percentile, 99.9);
  EXPECT_EQ(obj[5].latency.min_samples, 50);
  EXPECT_STREQ(ObjectiveKindName(obj[5].kind), "latency");
}

TEST(ParserTest, AnObjectiveHasExactlyOneKind) {
  const std::string two = "{name: o, probe: p, detect_within: 1m, availability: 99%}";
  const Diagnostic* d =
      ExpectError(WithObjective(two), "objectives[0].availability", 17, Col(two, "availability"));
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("already has 'detect_within'"), std::string::npos) << d->message;

  d = ExpectError(WithObjective("{name: o, probe: p}"), "objectives[0]", 17, 5);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("recover_within, detect_within, availability or latency"),
            std::string::npos)
      << d->message;
}

TEST(ParserTest, GameDayObjectiveErrorsNameTheField) {
  struct Bad {
    std::string line;
    std::string field;
    std::string at;  // where in the line the error points
    std::string message_contains;
  };
  const Bad kBad[] = {
      {"{name: o, probe: p, detect_within: 0s}", "objectives[0].detect_within", "0s",
       "greater than 0"},
      {"{name: o, probe: p, availability: 0%}", "objectives[0].availability", "0%",
       "above 0% and at most 100%"},
      {"{name: o, probe: p, availability: 150%}", "objectives[0].availability", "150%",
       "at most 100%"},
      {"{name: o, probe: p, availability: most}", "objectives[0].availability", "most",
       "expected a share"},
      {"{name: o, probe: p, latency: {percentile: 100, below: 1s}}",
       "objectives[0].latency.percentile", "100", "above 0 and below 100"},
      {"{name: o, probe: p, latency: {percentile: p99, below: 1s}}",
       "objectives[0].latency.percentile", "p99", "above 0 and below 100"},
      {"{name: o, probe: p, latency: {percentile: 99}}", "objectives[0].latency.below",
       "{percentile", "missing required field"},
      {"{name: o, probe: p, latency: {percentile: 99, below: 1s, min_samples: 0}}",
       "objectives[0].latency.min_samples", "0}", ""},
      {"{name: o, probe: p, latency: {percentile: 99, above: 1s}}", "objectives[0].latency.above",
       "above", "expected percentile, below or min_samples"},
      {"{name: o, probe: p, latency: 500ms}", "objectives[0].latency", "500ms", "mapping"},
      {"{name: o, probe: p, detect_within: 1m, stable_for: 2s}", "objectives[0].stable_for", "2s",
       "belongs to a recover_within objective"},
      {"{name: o, probe: p, after: revert, availability: 99%}", "objectives[0].after", "revert",
       "only recover_within can be measured after revert"},
  };
  for (const Bad& b : kBad) {
    SCOPED_TRACE(b.line);
    ParseOutcome o = WithObjective(b.line);
    const Diagnostic* d = ExpectError(o, b.field, 17, Col(b.line, b.at));
    if (d != nullptr) {
      EXPECT_NE(d->message.find(b.message_contains), std::string::npos) << d->message;
      EXPECT_EQ(d->pos.file, "x.yaml");
    }
  }
}

TEST(ParserTest, UnreadableFileGivesOneErrorNamingIt) {
  ParseOutcome o = ParseExperimentFile("/nonexistent/exp.yaml");
  ASSERT_EQ(o.errors.size(), 1u);
  EXPECT_FALSE(o.experiment.has_value());
  EXPECT_NE(o.errors[0].ToString().find("/nonexistent/exp.yaml"), std::string::npos);
  ParseOutcome dir = ParseExperimentFile(FAULTLINE_SOURCE_DIR);
  EXPECT_EQ(dir.errors.size(), 1u);
}

TEST(ParserTest, HostileInputGivesErrorsNotCrashes) {
  std::string deep_flow(100000, '[');
  std::string deep_block;
  for (int i = 0; i < 5000; ++i) deep_block += std::string(i, ' ') + "k:\n";
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 7919) % 256);
  const std::string long_label(300, 'a');
  std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"whitespace", "   \n\n  \n"},
      {"top-level list", "- a\n- b\n"},
      {"top-level scalar", "hello\n"},
      {"two documents", std::string(kValid) + "---\n" + std::string(kValid)},
      {"deep flow nesting", deep_flow},
      {"deep block nesting", deep_block},
      {"binary garbage", garbage},
      {"nul bytes", std::string("apiVersion: faultline/v1\0\0\0kind: x", 35)},
      {"huge number", Replace(kValid, "{url: \"http://127.0.0.1:1/x\"}",
                              "{url: \"http://x/\", expect_status: 99999999999999999999999999}")},
      {"huge duration", Replace(kValid, "duration: 20s", "duration: 9999999999999999999h")},
      {"shell in names", Replace(kValid, "name: f", "name: \";$(rm -rf /)\"")},
      {"long label", Replace(kValid, "{role: app}", "{role: " + long_label + "}")},
      {"long label key", Replace(kValid, "{role: app}", "{" + long_label + ": app}")},
      {"negative percentage", Replace(kValid, "{selector: {role: app}}",
                                      "{selector: {role: app}, mode: \"percent:-20\"}")},
      {"tabs", "apiVersion:\tfaultline/v1\n\tkind: Experiment\n"},
      {"alias to wrong type", "x: &a [1, 2]\n" + std::string(kValid)},
      {"map as key", Replace(kValid, "kind: Experiment", "? [a, b]\n: c\nkind: Experiment")},
      {"null everywhere",
       "apiVersion:\nkind:\nmetadata:\ntargets:\nfaults:\nprobes:\nobjectives:\n"},
      {"wrong types everywhere",
       "apiVersion: [1]\nkind: {a: b}\nmetadata: x\ntargets: [a]\nfaults: {}\nprobes: 3\n"
       "steady_state: []\nobjectives: x\nabort: {}\nmax_duration: [1]\n"},
      {"empty lists",
       "apiVersion: faultline/v1\nkind: Experiment\nmetadata: {name: x}\n"
       "targets: {}\nfaults: []\nprobes: []\nobjectives: []\n"},
      {"unclosed quote", "apiVersion: \"faultline/v1\nkind: Experiment\n"},
      // yaml-cpp 0.7's LoadAll loops forever on these; the parser must not use it.
      {"lone comma", ","},
      {"indented comma", "a: 1\n  , b\n"},
      {"flow key", "[:"},
      {"flow map key", "{:"},
      {"huge string", "apiVersion: " + std::string(500000, 'x') + "\n"},
  };
  for (const auto& [what, text] : cases) {
    ParseOutcome o = ParseExperimentText(text, "hostile.yaml");
    EXPECT_FALSE(o.ok()) << what;
    EXPECT_FALSE(o.errors.empty()) << what;
    EXPECT_FALSE(o.experiment.has_value()) << what;
    for (const Diagnostic& d : o.errors) {
      EXPECT_LT(d.ToString().size(), 600u) << what << ": " << d.ToString().substr(0, 200);
      EXPECT_EQ(d.pos.file, "hostile.yaml") << what;
    }
  }
}

TEST(ParserTest, EmptyValueIsReportedAtItsKey) {
  ParseOutcome o = ParseExperimentText(Replace(kValid, "duration: 20s", "duration:"), "x.yaml");
  const Diagnostic* d = ExpectError(o, "faults[0].duration", 10, 5);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->message, "requires a value");
}

TEST(ParserTest, TimeoutMayBeWrittenInTheKindBlockButNotTwice) {
  ParseOutcome once = ParseExperimentText(Replace(kValid, R"(url: "http://127.0.0.1:1/x")",
                                                  R"(url: "http://127.0.0.1:1/x", timeout: 2s)"),
                                          "x.yaml");
  ASSERT_TRUE(once.ok()) << AllErrors(once);
  EXPECT_EQ(once.experiment->probes[0].timeout, 2s);
  ParseOutcome twice =
      ParseExperimentText(Replace(kValid, R"(url: "http://127.0.0.1:1/x"})",
                                  "url: \"http://127.0.0.1:1/x\", timeout: 2s}\n    timeout: 1s"),
                          "x.yaml");
  ExpectError(twice, "probes[0].http.timeout", 13, 50);
}

TEST(ParserTest, ErrorFloodIsCapped) {
  std::string text = std::string(kValid) + "abort:\n";
  for (int i = 0; i < 1000; ++i) text += "  - {probe: nope, failing_for: 0s}\n";
  ParseOutcome o = ParseExperimentText(text, "x.yaml");
  ASSERT_EQ(o.errors.size(), 101u);
  EXPECT_EQ(o.errors.back().message, "too many errors; only the first 100 are shown");
}

TEST(ParserTest, DiagnosticFormatting) {
  Diagnostic d{SourcePos{"a.yaml", 3, 7}, "faults[0].duration", "must be greater than 0"};
  EXPECT_EQ(d.ToString(), "a.yaml:3:7: faults[0].duration: must be greater than 0");
  Diagnostic no_pos{SourcePos{"a.yaml", 0, 0}, "", "cannot read experiment file a.yaml"};
  EXPECT_EQ(no_pos.ToString(), "a.yaml: cannot read experiment file a.yaml");
}

}  // namespace
}  // namespace faultline::experiment

namespace faultline::experiment {
namespace {

constexpr std::string_view kDnsLine = "    dns: {domains: [db.test], mode: nodata}\n";

TEST(ParserNetworkTest, LatencyWithMatchBuildsTheSpec) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, kDnsLine,
              "    network:\n      latency: {delay: 100ms, jitter: 5ms, distribution: normal}\n"
              "      match: {direction: egress, protocol: tcp, hosts: [db.test], "
              "remote_ports: [8000], cidrs: [10.0.0.0/8], resolve_interval: 500ms}\n"),
      "x.yaml");
  ASSERT_TRUE(o.experiment.has_value()) << AllErrors(o);
  const auto& n = o.experiment->faults[0].spec.network();
  EXPECT_EQ(n.latency().delay_us(), 100000u);
  EXPECT_EQ(n.latency().jitter_us(), 5000u);
  EXPECT_EQ(n.latency().distribution(), v1::NetworkFault::Latency::NORMAL);
  EXPECT_EQ(n.match().direction(), v1::NetworkSelector::EGRESS);
  EXPECT_EQ(n.match().hosts(0), "db.test");
  EXPECT_EQ(n.match().remote_ports(0), 8000u);
  EXPECT_EQ(n.match().resolve_interval_ms(), 500u);
}

TEST(ParserNetworkTest, BandwidthRateUnitsAreTcs) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, kDnsLine, "    network: {bandwidth: {rate: 8mbit, burst: 32kb}}\n"),
      "x.yaml");
  ASSERT_TRUE(o.experiment.has_value()) << AllErrors(o);
  EXPECT_EQ(o.experiment->faults[0].spec.network().bandwidth().rate_bytes_per_second(), 1000000u);
  EXPECT_EQ(o.experiment->faults[0].spec.network().bandwidth().burst_bytes(), 32768u);
}

TEST(ParserNetworkTest, PartitionWithoutPeersIsAnError) {
  ParseOutcome o =
      ParseExperimentText(Replace(kValid, kDnsLine, "    network: {partition: {}}\n"), "x.yaml");
  ExpectError(o, "faults[0].network.match", 9, 14);
}

TEST(ParserNetworkTest, BadCidrAndTwoKindsArePositioned) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, kDnsLine, "    network: {blackhole: {}, match: {cidrs: [10.0.0.300]}}\n"),
      "x.yaml");
  ExpectError(o, "faults[0].network.match.cidrs[0]", 9, 46);
  o = ParseExperimentText(Replace(kValid, kDnsLine, "    network: {blackhole: {}, reject: {}}\n"),
                          "x.yaml");
  ExpectError(o, "faults[0].network.reject", 9, 30);
}

TEST(ParserNetworkTest, PartitionBetweenTargetGroups) {
  std::string text = Replace(kValid, "  app: {selector: {role: app}}\n",
                             "  app: {selector: {role: app}}\n  db: {selector: {role: db}}\n");
  ParseOutcome o = ParseExperimentText(
      Replace(text, kDnsLine, "    network: {partition: {from: app, to: db}}\n"), "x.yaml");
  ASSERT_TRUE(o.experiment.has_value()) << AllErrors(o);
  EXPECT_TRUE(o.experiment->faults[0].spec.network().has_partition());
  EXPECT_EQ(o.experiment->faults[0].partition_peer_targets, std::vector<std::string>{"db"});
  // An unknown group, the fault's own target, and a `from` that is not the fault's target.
  o = ParseExperimentText(Replace(text, kDnsLine, "    network: {partition: {to: [dbx]}}\n"),
                          "x.yaml");
  EXPECT_FALSE(o.experiment.has_value());
  EXPECT_NE(AllErrors(o).find("faults[0].network.partition.to[0]"), std::string::npos)
      << AllErrors(o);
  o = ParseExperimentText(Replace(text, kDnsLine, "    network: {partition: {to: app}}\n"),
                          "x.yaml");
  EXPECT_NE(AllErrors(o).find("partitioned from itself"), std::string::npos) << AllErrors(o);
  o = ParseExperimentText(
      Replace(text, kDnsLine, "    network: {partition: {from: db, to: app}}\n"), "x.yaml");
  EXPECT_NE(AllErrors(o).find("faults[0].network.partition.from"), std::string::npos)
      << AllErrors(o);
}

TEST(ParserNetworkTest, LossCorrelation) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, kDnsLine, "    network: {loss: {percent: 5, correlation: 25}}\n"), "x.yaml");
  ASSERT_TRUE(o.experiment.has_value()) << AllErrors(o);
  EXPECT_EQ(o.experiment->faults[0].spec.network().loss().correlation_percent(), 25u);
  o = ParseExperimentText(
      Replace(kValid, kDnsLine, "    network: {loss: {percent: 5, correlation: 101}}\n"), "x.yaml");
  EXPECT_NE(AllErrors(o).find("faults[0].network.loss.correlation"), std::string::npos)
      << AllErrors(o);
}

TEST(ParserDependencyTest, ToxicsAndHttpBuildTheSpec) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, kDnsLine,
              "    dependency:\n"
              "      match: {hosts: [db.test], remote_ports: [8000], resolve_interval: 500ms}\n"
              "      toxics:\n"
              "        - {direction: downstream, toxicity: 30%, latency: {delay: 50ms, jitter: "
              "5ms}}\n"
              "        - {bandwidth: {rate: 1mbit}}\n"
              "        - {reset_peer: {after: 100ms}}\n"
              "        - {timeout: {}}\n"
              "        - {slow_close: {delay: 1s}}\n"
              "        - {limit_data: {bytes: 10kb}}\n"
              "        - {slicer: {average_size: 64, size_variation: 16, delay: 1ms}}\n"
              "      http:\n"
              "        abort: [{status: 400, body: throttled, percent: 15%}, {status: 503, "
              "percent: 0.15}]\n"
              "        delay: {delay: 200ms, percent: 50%}\n"
              "        methods: [GET, PUT]\n"
              "        path_prefix: /kv/\n"),
      "x.yaml");
  ASSERT_TRUE(o.experiment.has_value()) << AllErrors(o);
  const auto& d = o.experiment->faults[0].spec.dependency();
  using Toxic = faultline::v1::DependencyFault::Toxic;
  EXPECT_EQ(d.match().hosts(0), "db.test");
  EXPECT_EQ(d.match().remote_ports(0), 8000u);
  ASSERT_EQ(d.toxics_size(), 7);
  EXPECT_EQ(d.toxics(0).direction(), Toxic::DOWNSTREAM);
  EXPECT_DOUBLE_EQ(d.toxics(0).toxicity(), 0.3);
  EXPECT_EQ(d.toxics(0).latency().latency_us(), 50000u);
  EXPECT_EQ(d.toxics(0).latency().jitter_us(), 5000u);
  EXPECT_EQ(d.toxics(1).bandwidth().rate_bytes_per_second(), 125000u);
  EXPECT_FALSE(d.toxics(1).has_toxicity());
  EXPECT_EQ(d.toxics(2).reset_peer().timeout_ms(), 100u);
  EXPECT_TRUE(d.toxics(3).has_timeout());
  EXPECT_EQ(d.toxics(4).slow_close().delay_ms(), 1000u);
  EXPECT_EQ(d.toxics(5).limit_data().bytes(), 10240u);
  EXPECT_EQ(d.toxics(6).slicer().delay_us(), 1000u);
  ASSERT_EQ(d.http().aborts_size(), 2);
  EXPECT_EQ(d.http().aborts(0).status(), 400u);
  EXPECT_EQ(d.http().aborts(0).body(), "throttled");
  EXPECT_DOUBLE_EQ(d.http().aborts(1).percent(), 15.0);
  EXPECT_EQ(d.http().delay_ms(), 200u);
  EXPECT_DOUBLE_EQ(d.http().delay_percent(), 50.0);
  EXPECT_EQ(d.http().methods_size(), 2);
  EXPECT_EQ(d.http().path_prefix(), "/kv/");
}

TEST(ParserDependencyTest, BadFieldsAreReportedWithTheirPosition) {
  const std::string head =
      "    dependency:\n      match: {hosts: [db.test], remote_ports: [8000]}\n";
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, kDnsLine, head + "      toxics: [{latency: {delay: 5ms}, slicer: {}}]\n"),
      "x.yaml");
  ExpectError(o, "faults[0].dependency.toxics[0].slicer", 11, 40);
  o = ParseExperimentText(
      Replace(kValid, kDnsLine, head + "      toxics: [{toxicity: 130%, timeout: {}}]\n"),
      "x.yaml");
  ExpectError(o, "faults[0].dependency.toxics[0].toxicity", 11, 27);
  o = ParseExperimentText(
      Replace(kValid, kDnsLine, head + "      http: {abort: {status: 200, percent: 10%}}\n"),
      "x.yaml");
  ExpectError(o, "faults[0].dependency.http.abort.status", 11, 30);
  o = ParseExperimentText(
      Replace(kValid, kDnsLine,
              "    dependency:\n      match: {hosts: [db.test]}\n      toxics: [{timeout: "
              "{}}]\n"),
      "x.yaml");
  ExpectError(o, "faults[0].dependency.match.remote_ports", 10, 14);
  o = ParseExperimentText(
      Replace(kValid, kDnsLine, head + "      toxics: [{direction: sideways, timeout: {}}]\n"),
      "x.yaml");
  ExpectError(o, "faults[0].dependency.toxics[0].direction", 11, 28);
}

// A kind's rules are common/faultspec's (the agent applies the very same); the parser reports
// their problems at the YAML value they came from, under the YAML field's name.
TEST(ParserKindRulesTest, FaultspecProblemsAreReportedAtTheirYamlValue) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, kDnsLine, "    network: {latency: {delay: 2m}}\n"), "x.yaml");
  const Diagnostic* d = ExpectError(o, "faults[0].network.latency.delay", 9, 32);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->message, "must be from 1us to 60s");
  // 17 spoofed addresses: the agent's bound, reported at the list.
  std::string many = "[";
  for (int i = 0; i < 17; ++i) many += (i ? ", 10.0.0." : "10.0.0.") + std::to_string(i + 1);
  o = ParseExperimentText(
      Replace(kValid, kDnsLine,
              "    dns: {domains: [db.test], mode: spoof, addresses: " + many + "]}\n"),
      "x.yaml");
  d = ExpectError(o, "faults[0].dns.addresses", 9, 55);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(d->message.find("1 to 16"), std::string::npos) << d->message;
  // A field the YAML leaves out is reported at its mapping, under the YAML name.
  o = ParseExperimentText(Replace(kValid, kDnsLine, "    dns: {domains: [db.test], mode: spoof}\n"),
                          "x.yaml");
  ExpectError(o, "faults[0].dns.addresses", 9, 10);
  // Every problem of the kind, not only the first.
  o = ParseExperimentText(
      Replace(kValid, kDnsLine,
              "    process: {action: kill, name: a/b, interval: 10ms, percent: 101}\n"),
      "x.yaml");
  ExpectError(o, "faults[0].process.name", 9, 35);
  ExpectError(o, "faults[0].process.interval", 9, 50);
  ExpectError(o, "faults[0].process.percent", 9, 65);
}

TEST(ParserNetworkTest, ShippedNetworkExperimentsParse) {
  for (const char* name : {"dependency-latency", "region-partition", "dynamodb-throttling"}) {
    ParseOutcome o =
        ParseExperimentFile(std::string(FAULTLINE_SOURCE_DIR) + "/experiments/" + name + ".yaml");
    EXPECT_TRUE(o.experiment.has_value()) << name << "\n" << AllErrors(o);
  }
}

}  // namespace
}  // namespace faultline::experiment

namespace faultline::experiment {
namespace {

constexpr std::string_view kDnsFaultLine = "    dns: {domains: [db.test], mode: nodata}\n";

TEST(ParserProcessTest, KillByNameBuildsTheSpec) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, kDnsFaultLine,
              "    process: {action: kill, name: faultline-sample-kv, signal: term, count: 1, "
              "interval: 500ms}\n"),
      "x.yaml");
  ASSERT_TRUE(o.experiment.has_value()) << AllErrors(o);
  const v1::ProcessFault& p = o.experiment->faults[0].spec.process();
  EXPECT_EQ(p.action(), v1::ProcessFault::KILL);
  EXPECT_EQ(p.name(), "faultline-sample-kv");
  EXPECT_EQ(p.signal(), "SIGTERM");
  EXPECT_EQ(p.count(), 1u);
  EXPECT_EQ(p.interval_ms(), 500u);
}

TEST(ParserProcessTest, PauseByPidfileOrCgroup) {
  ParseOutcome o = ParseExperimentText(
      Replace(kValid, kDnsFaultLine, "    process: {action: pause, pidfile: /run/kv.pid}\n"),
      "x.yaml");
  ASSERT_TRUE(o.experiment.has_value()) << AllErrors(o);
  EXPECT_EQ(o.experiment->faults[0].spec.process().action(), v1::ProcessFault::PAUSE);
  EXPECT_EQ(o.experiment->faults[0].spec.process().pidfile(), "/run/kv.pid");
  EXPECT_TRUE(o.experiment->faults[0].spec.process().signal().empty());
  o = ParseExperimentText(
      Replace(kValid, kDnsFaultLine,
              "    process: {action: pause, cgroup: system.slice/kv.service, percent: 50%}\n"),
      "x.yaml");
  ASSERT_TRUE(o.experiment.has_value()) << AllErrors(o);
  EXPECT_EQ(o.experiment->faults[0].spec.process().cgroup(), "system.slice/kv.service");
  EXPECT_EQ(o.experiment->faults[0].spec.process().percent(), 50u);
}

TEST(ParserProcessTest, EveryBadFieldIsPositioned) {
  auto parse = [](std::string_view line) {
    return ParseExperimentText(Replace(kValid, kDnsFaultLine, line), "x.yaml");
  };
  ExpectError(parse("    process: {action: crash, name: kv}\n"), "faults[0].process.action", 9, 23);
  ExpectError(parse("    process: {name: kv}\n"), "faults[0].process.action", 9, 14);
  ExpectError(parse("    process: {action: kill}\n"), "faults[0].process", 9, 14);
  ExpectError(parse("    process: {action: kill, name: kv, pidfile: /x.pid}\n"),
              "faults[0].process.pidfile", 9, 39);
  ExpectError(parse("    process: {action: kill, name: a/b}\n"), "faults[0].process.name", 9, 35);
  ExpectError(parse("    process: {action: kill, pidfile: run/x.pid}\n"),
              "faults[0].process.pidfile", 9, 38);
  ExpectError(parse("    process: {action: kill, cgroup: a/../b}\n"), "faults[0].process.cgroup", 9,
              37);
  ExpectError(parse("    process: {action: kill, name: kv, signal: SIGSTOP}\n"),
              "faults[0].process.signal", 9, 47);
  ExpectError(parse("    process: {action: pause, name: kv, signal: SIGKILL}\n"),
              "faults[0].process.signal", 9, 48);
  ExpectError(parse("    process: {action: pause, name: kv, interval: 1s}\n"),
              "faults[0].process.interval", 9, 50);
  ExpectError(parse("    process: {action: kill, name: kv, interval: 10ms}\n"),
              "faults[0].process.interval", 9, 49);
  ExpectError(parse("    process: {action: kill, name: kv, count: 1, percent: 5%}\n"),
              "faults[0].process.percent", 9, 58);
  ExpectError(parse("    process: {action: kill, name: kv, count: 0}\n"), "faults[0].process.count",
              9, 46);
  ExpectError(parse("    process: {action: kill, name: kv, percent: 101}\n"),
              "faults[0].process.percent", 9, 48);
  ExpectError(parse("    process: {action: kill, nmae: kv}\n"), "faults[0].process.nmae", 9, 29);
  ExpectError(parse("    process: {action: kill, name: kv}\n    dns: {domains: [a.test], mode: "
                    "nodata}\n"),
              "faults[0].dns", 10, 5);
}

TEST(ParserProcessTest, ShippedProcessExperimentParses) {
  ParseOutcome o =
      ParseExperimentFile(std::string(FAULTLINE_SOURCE_DIR) + "/experiments/db-process-crash.yaml");
  ASSERT_TRUE(o.experiment.has_value()) << AllErrors(o);
  EXPECT_EQ(o.experiment->faults[0].spec.process().name(), "faultline-sample-kv");
}

TEST(ParserSliProbeTest, GrpcHealthAndPrometheusProbesParse) {
  std::string text = Replace(kValid, "  - name: p\n", R"(  - name: g
    grpc_health: {address: "10.77.0.10:50051", service: orders.v1.Orders, timeout: 2s}
  - name: gt
    grpc_health:
      address: "[::1]:443"
      tls: {ca: /etc/ca.pem, cert: /etc/c.pem, key: /etc/k.pem, server_name: orders.test}
  - name: q
    prometheus:
      url: "http://10.77.0.1:9090/"
      query: 'sum(rate(orders_requests_total{outcome="error"}[5s]))'
      op: "<="
      value: 0.5
  - name: p
)");
  ParseOutcome o = ParseExperimentText(text, "x.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  const Experiment& e = *o.experiment;
  ASSERT_EQ(e.probes.size(), 4u);
  EXPECT_EQ(e.probes[0].kind, Probe::Kind::kGrpcHealth);
  EXPECT_EQ(e.probes[0].grpc_health.address, "10.77.0.10:50051");
  EXPECT_EQ(e.probes[0].grpc_health.service, "orders.v1.Orders");
  EXPECT_FALSE(e.probes[0].grpc_health.tls);
  EXPECT_EQ(e.probes[0].timeout, 2s);
  EXPECT_TRUE(e.probes[1].grpc_health.tls);
  EXPECT_EQ(e.probes[1].grpc_health.ca_file, "/etc/ca.pem");
  EXPECT_EQ(e.probes[1].grpc_health.key_file, "/etc/k.pem");
  EXPECT_EQ(e.probes[1].grpc_health.server_name, "orders.test");
  EXPECT_EQ(e.probes[2].kind, Probe::Kind::kPrometheus);
  EXPECT_EQ(e.probes[2].prometheus.url, "http://10.77.0.1:9090");  // trailing '/' dropped
  EXPECT_EQ(e.probes[2].prometheus.query,
            R"(sum(rate(orders_requests_total{outcome="error"}[5s])))");
  EXPECT_EQ(e.probes[2].prometheus.op, CompareOp::kLe);
  EXPECT_EQ(e.probes[2].prometheus.value, 0.5);
}

TEST(ParserSliProbeTest, ShippedPromQlExperimentParses) {
  ParseOutcome o = ParseExperimentFile(std::string(FAULTLINE_SOURCE_DIR) +
                                       "/experiments/orders-slo-promql.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  const Probe* q = o.experiment->FindProbe("orders-error-ratio");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->kind, Probe::Kind::kPrometheus);
  EXPECT_EQ(q->prometheus.url, "http://10.77.0.2:9090");
}

TEST(ParserSliProbeTest, EveryComparisonParsesAndNothingElse) {
  for (const char* op : {"<", "<=", ">", ">=", "==", "!="}) {
    auto parsed = ParseCompareOp(op);
    ASSERT_TRUE(parsed.has_value()) << op;
    EXPECT_STREQ(CompareOpName(*parsed), op);
  }
  for (const char* op : {"", "=", "lt", "=<", "<>", " <"}) EXPECT_FALSE(ParseCompareOp(op)) << op;
}

TEST(ParserSliProbeTest, FieldErrorsArePositionedAndNamed) {
  struct Case {
    std::string to, field, message;
    int line, column;
  };
  const std::string http = R"(http: {url: "http://127.0.0.1:1/x"})";
  const std::string q = R"(prometheus: {url: "http://p:9090", query: "up", op: "<", value: 1)";
  for (const Case& c : std::vector<Case>{
           {R"(grpc_health: {service: x})", "probes[0].grpc_health.address",
            "missing required field", 13, 18},
           {R"(grpc_health: {address: "x"})", "probes[0].grpc_health.address", "host:port", 13, 28},
           {R"(grpc_health: {address: "x:1", tls: {cert: /c.pem}})", "probes[0].grpc_health.tls",
            "cert and key go together", 13, 40},
           {R"(grpc_health: {address: "x:1", timeout: 2m})", "probes[0].grpc_health.timeout",
            "at most 1m", 13, 44},
           {q + ", extra: 1}", "probes[0].prometheus.extra", "unknown field", 13, 72},
           {R"(prometheus: {url: "http://p:9090", query: "up", op: "=", value: 1})",
            "probes[0].prometheus.op", "expected <, <=, >, >=, == or !=", 13, 57},
           {R"(prometheus: {url: "http://p:9090", query: "up", op: "<", value: lots})",
            "probes[0].prometheus.value", "expected a finite number", 13, 69},
           {R"(prometheus: {url: "http://p:9090", query: "up", op: "<", value: .nan})",
            "probes[0].prometheus.value", "expected a finite number", 13, 69},
           {R"(prometheus: {url: "http://p:9090", query: " ", op: "<", value: 1})",
            "probes[0].prometheus.query", "empty", 13, 47},
           {R"(prometheus: {url: "http://p:9090", query: ")" + std::string(4097, 'x') +
                R"(", op: "<", value: 1})",
            "probes[0].prometheus.query", "longer than 4096", 13, 47},
           {R"(prometheus: {url: "http://p:9090/?x=1", query: "up", op: "<", value: 1})",
            "probes[0].prometheus.url", "no query or fragment", 13, 23},
           {R"(prometheus: {url: "p:9090", query: "up", op: "<", value: 1})",
            "probes[0].prometheus.url", "http://", 13, 23},
           {R"(prometheus: {url: "http://p:9090", op: "<", value: 1})",
            "probes[0].prometheus.query", "missing required field", 13, 17},
       }) {
    ParseOutcome o = ParseExperimentText(Replace(kValid, http, c.to), "x.yaml");
    const Diagnostic* d = ExpectError(o, c.field, c.line, c.column);
    if (d != nullptr) {
      EXPECT_NE(d->message.find(c.message), std::string::npos) << d->message;
    }
  }
}

TEST(ParserSliProbeTest, PrometheusAlertAbortConditionParses) {
  std::string text = std::string(kValid) +
                     "abort:\n"
                     "  - {prometheus_alert: OrdersErrorBudgetBurn, url: \"http://10.77.0.1:9090\","
                     " interval: 500ms}\n"
                     "  - {probe: p, failing_for: 1m}\n";
  ParseOutcome o = ParseExperimentText(text, "x.yaml");
  ASSERT_TRUE(o.ok()) << AllErrors(o);
  ASSERT_EQ(o.experiment->aborts.size(), 2u);
  const AbortCondition& a = o.experiment->aborts[0];
  EXPECT_EQ(a.prometheus_alert, "OrdersErrorBudgetBurn");
  EXPECT_EQ(a.prometheus_url, "http://10.77.0.1:9090");
  EXPECT_EQ(a.alert_interval, 500ms);
  EXPECT_TRUE(a.probe.empty());
  EXPECT_EQ(o.experiment->aborts[1].probe, "p");
  EXPECT_TRUE(o.experiment->aborts[1].prometheus_alert.empty());
}

TEST(ParserSliProbeTest, AbortConditionKeysOfTheOtherKindAreRejected) {
  struct Case {
    std::string line, field, message;
  };
  for (const Case& c : std::vector<Case>{
           {"{prometheus_alert: A}", "abort[0].url", "missing required field"},
           {"{prometheus_alert: A, url: \"http://p:9090\", failing_for: 1s}",
            "abort[0].failing_for", "belongs to a probe condition"},
           {"{probe: p, failing_for: 1s, url: \"http://p:9090\"}", "abort[0].url",
            "belongs to a prometheus_alert condition"},
           {"{probe: p, prometheus_alert: A, failing_for: 1s}", "abort[0].prometheus_alert",
            "exactly one kind"},
           {"{prometheus_alert: A, url: \"http://p:9090\", interval: 10ms}", "abort[0].interval",
            "between 100ms and 1m"},
           {"{prometheus_alert: \"\", url: \"http://p:9090\"}", "abort[0].prometheus_alert",
            "must not be empty"},
       }) {
    ParseOutcome o =
        ParseExperimentText(std::string(kValid) + "abort:\n  - " + c.line + "\n", "x.yaml");
    bool found = false;
    for (const Diagnostic& d : o.errors) {
      if (d.field == c.field) {
        found = true;
        EXPECT_NE(d.message.find(c.message), std::string::npos) << d.ToString();
        EXPECT_EQ(d.pos.line, 19) << d.ToString();
      }
    }
    EXPECT_TRUE(found) << c.line << " gave:\n" << AllErrors(o);
    EXPECT_FALSE(o.experiment.has_value());
  }
}

}  // namespace
}  // namespace faultline::experiment
