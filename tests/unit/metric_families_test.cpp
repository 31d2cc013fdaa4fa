// The catalogue of metric families (metrics/families.hpp): every family declared there is in
// kAll, whose orders and names the header checks at compile time, and every one is documented in
// docs/metrics.md, the public contract of names.
#include <doctest/doctest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "metrics/families.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

std::string read_source(const std::string& relative) {
  std::ifstream in(std::string(PGWD_SOURCE_DIR) + "/" + relative);
  REQUIRE_MESSAGE(in.good(), "cannot read " << relative);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_CASE(
    "metric families: kAll lists every family the header declares and docs/metrics.md documents "
    "each") {
  // The header's own declarations, by their C++ names: a family declared but left out of kAll
  // would escape the compile-time check of orders and names.
  const std::string header = read_source("watchdog/metrics/families.hpp");
  const std::regex declaration(R"(inline constexpr Family (\w+)\{)");
  std::set<std::string> declared;
  for (auto it = std::sregex_iterator(header.begin(), header.end(), declaration);
       it != std::sregex_iterator(); ++it)
    declared.insert((*it)[1].str());
  CHECK(declared.size() == std::size(pgwd::families::kAll));
  for (const std::string& name : declared) {
    const bool listed = header.find("&" + name + ",") != std::string::npos ||
                        header.find("&" + name + "}") != std::string::npos;
    CHECK_MESSAGE(listed, name << " is declared but not listed in kAll");
  }

  const std::string docs = read_source("docs/metrics.md");
  for (const pgwd::Family* family : pgwd::families::kAll)
    CHECK_MESSAGE(docs.find("`" + std::string(family->name) + "`") != std::string::npos,
                  family->name << " is not documented in docs/metrics.md");
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
