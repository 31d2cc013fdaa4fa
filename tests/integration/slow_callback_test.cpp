// Slow callbacks named (like asyncio's slow_callback_duration): libpq computes SCRAM inside
// PQconnectPoll, on the loop, a few milliseconds of CPU per connection. With a low threshold
// every such step is logged with the target, the connection and what it was doing, and counted.
#include <doctest/doctest.h>

#include "support/watchdog_fixture.hpp"

// This file's own scope, also where a unity build puts several test files in one translation
// unit (tests/CMakeLists.txt: PGWD_TEST_FILE_ID).
namespace {
namespace PGWD_TEST_FILE_ID {

using namespace std::chrono_literals;
using namespace pgwd;

TEST_CASE("slow callbacks: SCRAM inside PQconnectPoll is reported with its target and phase") {
  pgwd::testing::TestCluster cluster;  // the watchdog role authenticates with scram-sha-256
  pgwd::testing::TestLoop loop;
  const auto log_text = std::make_shared<std::ostringstream>();
  auto metrics = make_series_store();
  Watchdog watchdog(loop.base(),
                    WatchdogOptions{.metrics = metrics,
                                    .logger = pgwd::testing::WatchdogHarness::make_logger(log_text),
                                    .name = "scram",
                                    .slow_callback_threshold = 1ms});
  TargetOptions o;
  o.name = "scrammed";
  o.conninfo = cluster.conninfo("scrammed");
  o.connections = 10;
  watchdog.add_target(o);
  REQUIRE(loop.run_until(
      [&] {
        const auto s = watchdog.connection_states("scrammed");
        return std::count(s.begin(), s.end(), ConnectionState::healthy) == 10;
      },
      20s));
  const double slow = pgwd::testing::metric_value(metrics, "pgwatchdog_slow_callbacks_total",
                                                  {{"loop", "scram"}, {"phase", "connect_poll"}});
  MESSAGE("10 SCRAM connects: ", slow, " connect_poll callbacks took 1 ms or more");
  CHECK(slow >= 1);
  const std::string log = log_text->str();
  CHECK(log.find("slow callback: ") != std::string::npos);
  CHECK(log.find("in connect_poll (authentication (SCRAM computes here)) of scrammed[") !=
        std::string::npos);
}

}  // namespace PGWD_TEST_FILE_ID
}  // namespace
