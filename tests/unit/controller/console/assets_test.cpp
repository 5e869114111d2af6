// The console's page as embedded in the binary (console/web/ built by CMake, served through
// controller/console/assets.h): the page and every asset it names are there with their content
// types, and the page holds no inline script or style (the CSP forbids both).
#include "controller/console/assets.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace faultline::console {
namespace {

TEST(ConsoleAssetsTest, PageIsServedAtRootAsHtml) {
  const ConsoleAsset* page = FindConsoleAsset("/");
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
  EXPECT_NE(page->body.find("<!doctype html>"), std::string_view::npos);
}

TEST(ConsoleAssetsTest, EveryAssetThePageNamesIsEmbeddedWithItsType) {
  std::string page(FindConsoleAsset("/")->body);
  std::regex ref(R"re((?:src|href)="([^"]+)")re");
  int named = 0;
  for (auto it = std::sregex_iterator(page.begin(), page.end(), ref); it != std::sregex_iterator();
       ++it) {
    std::string path = (*it)[1];
    ASSERT_EQ(path.rfind("/assets/", 0), 0u) << path << ": the page must name only its own assets";
    const ConsoleAsset* a = FindConsoleAsset(path);
    ASSERT_NE(a, nullptr) << path;
    EXPECT_FALSE(a->body.empty()) << path;
    ++named;
  }
  EXPECT_EQ(named, 3);  // the icon, the stylesheet and the script
  EXPECT_EQ(FindConsoleAsset("/assets/console.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(FindConsoleAsset("/assets/console.css")->content_type, "text/css; charset=utf-8");
  EXPECT_EQ(FindConsoleAsset("/assets/icon.svg")->content_type, "image/svg+xml");
}

TEST(ConsoleAssetsTest, PageHasNoInlineScriptOrStyle) {
  std::string page(FindConsoleAsset("/")->body);
  // Every <script> has a src and is empty; no <style> element, no style or on* attribute.
  std::regex script(R"re(<script\b([^>]*)>([\s\S]*?)</script>)re");
  int scripts = 0;
  for (auto it = std::sregex_iterator(page.begin(), page.end(), script);
       it != std::sregex_iterator(); ++it) {
    EXPECT_NE((*it)[1].str().find("src="), std::string::npos);
    EXPECT_TRUE((*it)[2].str().empty());
    ++scripts;
  }
  EXPECT_EQ(scripts, 1);
  EXPECT_EQ(page.find("<style"), std::string::npos);
  EXPECT_FALSE(std::regex_search(page, std::regex(R"re(\s(style|on\w+)=)re")));
}

TEST(ConsoleAssetsTest, UnknownPathsAreNotFound) {
  EXPECT_EQ(FindConsoleAsset("/index.html"), nullptr);
  EXPECT_EQ(FindConsoleAsset("/assets/"), nullptr);
  EXPECT_EQ(FindConsoleAsset("/assets/../console.js"), nullptr);
  EXPECT_EQ(FindConsoleAsset(""), nullptr);
}

}  // namespace
}  // namespace faultline::console
