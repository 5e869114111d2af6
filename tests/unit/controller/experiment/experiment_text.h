// What the experiment parser's tests share: a small valid experiment to edit, the edit, and
// checks on the parser's diagnostics. Test-only (gtest assertions); header-only.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "controller/experiment/parser.h"

namespace faultline::experiment::parser_testing {

// A small valid experiment; the malformed cases are one edit away from it, so their line numbers
// refer to this layout (the target is line 5).
inline constexpr std::string_view kValidExperiment = R"(apiVersion: faultline/v1
kind: Experiment
metadata: {name: t}
targets:
  app: {selector: {role: app}}
faults:
  - name: f
    target: app
    dns: {domains: [db.test], mode: nodata}
    duration: 20s
probes:
  - name: p
    http: {url: "http://127.0.0.1:1/x"}
    interval: 250ms
steady_state: {probes: [p], for: 1s}
objectives:
  - {name: o, probe: p, recover_within: 10s}
)";

// `text` with the first `from` replaced by `to`; a test failure (and `text` unchanged) when
// `from` is not in it.
inline std::string Replace(std::string_view text, std::string_view from, std::string_view to) {
  std::string s(text);
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// Every error of `o`, one per line, for failure messages.
inline std::string AllErrors(const ParseOutcome& o) {
  std::string out;
  for (const Diagnostic& d : o.errors) out += d.ToString() + "\n";
  return out;
}

// Asserts that `o` has no experiment and holds an error for `field` at line:column, and returns
// it (nullptr, after a test failure, when there is none).
inline const Diagnostic* ExpectError(const ParseOutcome& o, const std::string& field, int line,
                                     int column) {
  EXPECT_FALSE(o.experiment.has_value());
  for (const Diagnostic& d : o.errors) {
    if (d.field == field) {
      EXPECT_EQ(d.pos.line, line) << d.ToString();
      EXPECT_EQ(d.pos.column, column) << d.ToString();
      return &d;
    }
  }
  ADD_FAILURE() << "no error for " << field << "; errors:\n" << AllErrors(o);
  return nullptr;
}

}  // namespace faultline::experiment::parser_testing
