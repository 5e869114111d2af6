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

// Text safe to print on a terminal: ESC, every other C0 control (U+0000-U+001F) and DEL, the C1
// controls (U+0080-U+009F, which a UTF-8 terminal also obeys) and invalid UTF-8 are shown as a
// visible escape ("\x1b", "\u009b") instead of being sent, so a probe detail, an agent's error or
// a name from an experiment file can neither move the cursor nor retitle or recolour the
// terminal. Newlines (and tabs) are kept when `keep_newlines`, otherwise escaped too (one line).
// Pure; total.
std::string StripTerminalControls(std::string_view text, bool keep_newlines = true);

}  // namespace faultline::report
