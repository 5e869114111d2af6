// Placeholder until console/web/ is built and embedded: a page that says so. Replaced by the
// generated assets (console/web/, owned by the frontend).
#include "controller/console/assets.h"

namespace faultline::console {

namespace {
constexpr ConsoleAsset kIndex{"/", "text/html; charset=utf-8",
                              "<!doctype html><title>Faultline console</title>"
                              "<p>The console's page was not built into this binary.</p>"};
}  // namespace

const ConsoleAsset* FindConsoleAsset(std::string_view path) {
  return path == "/" ? &kIndex : nullptr;
}

}  // namespace faultline::console
