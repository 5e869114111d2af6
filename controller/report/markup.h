#pragma once
// Escaping for the HTML and XML reports. Every string in a report may come from a user's
// experiment file or an agent, so each one passes through EscapeMarkup before it is written.

#include <string>
#include <string_view>

namespace faultline::report {

// Text safe inside an HTML/XML element or a double- or single-quoted attribute: & < > " ' become
// entities; invalid UTF-8 and control characters that XML 1.0 forbids (all below U+0020 except
// tab, newline, carriage return) become U+FFFD. Pure; total.
std::string EscapeMarkup(std::string_view text);

}  // namespace faultline::report
