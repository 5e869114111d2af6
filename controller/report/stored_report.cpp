#include "controller/report/stored_report.h"

#include <spdlog/fmt/fmt.h>

#include <nlohmann/json.hpp>

#include "controller/report/report.h"

namespace faultline::report {

using json = nlohmann::json;

namespace {

json AnnotationsJson(const store::StoredRun& s) {
  json out = json::array();
  for (const auto& a : s.annotations) {
    out.push_back({{"at", IsoTime(a.at_unix_ms)},
                   {"at_unix_ms", a.at_unix_ms},
                   {"t_s", (a.at_unix_ms - s.run.started_unix_ms) / 1000.0},
                   {"author", a.author},
                   {"text", a.text}});
  }
  return out;
}

}  // namespace

Result<std::string> RenderStoredJson(const store::StoredRun& stored) {
  json j;
  if (!stored.run.report_json.empty()) {
    j = json::parse(stored.run.report_json, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return InvalidArgument("the stored report of run " + stored.run.id + " is not valid JSON");
    }
  } else {
    // No report (the run is still going, or its controller died): what the store knows.
    j = {{"experiment", stored.run.experiment},
         {"run_id", stored.run.id},
         {"verdict", stored.run.verdict.empty() ? json(nullptr) : json(stored.run.verdict)},
         {"started_at", IsoTime(stored.run.started_unix_ms)},
         {"ended_at", IsoTime(stored.run.ended_unix_ms)}};
  }
  j["state"] = store::RunStateName(stored.run.state);
  j["source"] = stored.run.source;
  j["annotations"] = AnnotationsJson(stored);
  return j.dump(2) + "\n";
}

Result<ReportModel> LoadStoredReport(const store::StoredRun& stored) {
  if (stored.run.report_json.empty()) {
    return FailedPrecondition("run " + stored.run.id + " has no report (" +
                              store::RunStateName(stored.run.state) +
                              (stored.run.state == store::RunState::kRunning
                                   ? ": it has not finished)"
                                   : ": it was interrupted before it could report)"));
  }
  auto doc = RenderStoredJson(stored);
  if (!doc.ok()) return doc.status();
  return ParseReportJson(*doc, "run " + stored.run.id);
}

Result<std::string> RenderStoredText(const store::StoredRun& stored) {
  if (stored.run.report_json.empty()) {
    std::string out = fmt::format(
        "\nExperiment {}  run {}\nState: {} (no report: {})\nStarted {}{}\n", stored.run.experiment,
        stored.run.id, store::RunStateName(stored.run.state),
        stored.run.state == store::RunState::kRunning
            ? "the run has not finished"
            : "the run was interrupted before it could report",
        IsoTime(stored.run.started_unix_ms),
        stored.run.ended_unix_ms > 0 ? ", ended " + IsoTime(stored.run.ended_unix_ms) : "");
    for (const auto& a : stored.annotations) {
      out += fmt::format("  {}  {}: {}\n", IsoTime(a.at_unix_ms), a.author.empty() ? "-" : a.author,
                         a.text);
    }
    return out;
  }
  auto model = LoadStoredReport(stored);
  if (!model.ok()) return model.status();
  std::string out = RenderText(*model);
  if (stored.run.state == store::RunState::kInterrupted) {
    out +=
        "note: the run was marked interrupted (its controller was presumed dead) before "
        "this report arrived\n";
  }
  return out;
}

}  // namespace faultline::report
