// The console's page as embedded in the binary (console/web/ built by CMake, served through
// controller/console/assets.h): the page and every asset it names are there with their content
// types, and the page holds no inline script or style (the CSP forbids both).
#include "controller/console/assets.h"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>
#include <string>

#include "controller/report/html_parts.h"

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

// The live timeline is the report's SVG, so the console draws it with the report's palette: every
// `svg ...{...}` rule of the HTML report's stylesheet is in the console's, unchanged.
TEST(ConsoleAssetsTest, StylesheetHasEveryRuleOfTheReportsSvg) {
  std::string console_css(FindConsoleAsset("/assets/console.css")->body);
  std::string report_css(report::HtmlReportStyle());
  std::stringstream rules(report_css);
  std::string rule;
  int svg_rules = 0;
  while (std::getline(rules, rule, '}')) {
    rule.erase(0, rule.find_first_not_of(" \n"));
    if (rule.rfind("svg", 0) != 0) continue;
    ++svg_rules;
    EXPECT_NE(console_css.find(rule + "}"), std::string::npos) << rule << "}";
  }
  EXPECT_GT(svg_rules, 20);
}

TEST(ConsoleAssetsTest, UnknownPathsAreNotFound) {
  EXPECT_EQ(FindConsoleAsset("/index.html"), nullptr);
  EXPECT_EQ(FindConsoleAsset("/assets/"), nullptr);
  EXPECT_EQ(FindConsoleAsset("/assets/../console.js"), nullptr);
  EXPECT_EQ(FindConsoleAsset(""), nullptr);
}

}  // namespace
}  // namespace faultline::console
