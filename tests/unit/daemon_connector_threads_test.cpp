// The daemon's top-level `connector_threads` key (WatchdogOptions::connector_threads).
#include <doctest/doctest.h>

#include <string>
#include <thread>

#include "daemon/config.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace pgwd::daemon;

namespace {

std::string error_of(std::string_view yaml) {
  try {
    (void)parse_config(yaml, "/etc/pgwatchdog.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("daemon config: connector_threads defaults to one per core, at most 4") {
  const DaemonConfig config = parse_config("listen: 127.0.0.1:10432\n", "f.yaml");
  const unsigned cores = std::thread::hardware_concurrency();
  const std::size_t expected = cores == 0 ? 1 : std::min<std::size_t>(cores, 4);
  CHECK(config.connector_threads == expected);
  CHECK(default_connector_threads() == expected);
  CHECK(config.connector_threads >= 1);
  CHECK(config.connector_threads <= kMaxDefaultConnectorThreads);
}

TEST_CASE("daemon config: connector_threads takes 0 (connect on the watch loop) to 64") {
  CHECK(parse_config("connector_threads: 0\n", "f.yaml").connector_threads == 0);
  CHECK(parse_config("connector_threads: 3\n", "f.yaml").connector_threads == 3);
  CHECK(parse_config("connector_threads: 64\n", "f.yaml").connector_threads == 64);
}

TEST_CASE("daemon config: a bad connector_threads is refused with the key, the line and the range") {
  CHECK(error_of("listen: 127.0.0.1:10432\nconnector_threads: 65\n") ==
        "/etc/pgwatchdog.yaml:2: connector_threads: '65' is out of range (0 to 64)");
  CHECK(error_of("connector_threads: -1\n").find("connector_threads") != std::string::npos);
  CHECK(error_of("connector_threads: two\n").find("connector_threads") != std::string::npos);
  CHECK(error_of("connector_threads: two\n").find(":1:") != std::string::npos);
  CHECK(error_of("connector_threads: [1]\n").find("connector_threads") != std::string::npos);
}

TEST_CASE("daemon config: connector_threads belongs at the top level, not under defaults") {
  CHECK(error_of("defaults:\n  connector_threads: 2\n").find("connector_threads") !=
        std::string::npos);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
