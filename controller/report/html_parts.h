#pragma once
// Pieces of the HTML report (html_report.cpp) that other HTML views reuse, so every Faultline
// page looks alike and draws axes the same way: the inline stylesheet, the axis step and the
// human duration labels. Pure; thread-safe.

#include <string>
#include <string_view>

namespace faultline::report {

// The report's inline CSS (no external resource; the page's CSP allows inline style only).
std::string_view HtmlReportStyle();

// The smallest "nice" step (1, 2, 5 × 10^k) giving at most `max_ticks` ticks over `span`; 1 for a
// span <= 0.
double HtmlAxisStep(double span, int max_ticks);

// The CSS class of a verdict: "pass", "fail", "aborted", else "error".
const char* HtmlVerdictClass(const std::string& verdict);

// A duration as a person reads it: "850ms", "12.4s", "15m", "1h30m"; "—" when not finite.
std::string HtmlHumanDuration(double seconds);

}  // namespace faultline::report
