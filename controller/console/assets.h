#pragma once
// The console's page and assets, embedded in faultline-controller at build time (see
// docs/console-api.md). The implementation is generated from console/web/'s build output; nothing
// is read from disk or fetched at run time.

#include <string_view>

namespace faultline::console {

struct ConsoleAsset {
  std::string_view path;          // "/", "/assets/console.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view body;
};

// The asset served at `path` ("/" is the page), or nullptr. Thread-safe (static data).
const ConsoleAsset* FindConsoleAsset(std::string_view path);

}  // namespace faultline::console
