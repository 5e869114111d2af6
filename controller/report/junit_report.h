#pragma once
// JUnit XML for CI gates (`run --report-junit`, `report --format junit`): one <testsuite> per run,
// one <testcase> per objective. A missed objective is a <failure type="ObjectiveMissed"> whose
// message gives measured vs target; an objective that could not be measured (UNKNOWN) or a run
// that was ABORTED or ended in ERROR is an <error>. The run id, verdict and reason are
// <properties>; the text report is the suite's <system-out>. Validates against
// tests/unit/controller/report/junit.xsd (the widely used Jenkins/Ant shape).

#include <string>

#include "controller/report/report_model.h"

namespace faultline::report {

// The JUnit XML document. Pure; every string is escaped (see EscapeMarkup).
std::string RenderJunit(const ReportModel& report);

}  // namespace faultline::report
